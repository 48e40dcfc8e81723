using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// The attach points that take chains back from the kernel's nf_tables in a commit: each runs a chain the kernel held,
/// and its program is installed before the kernel commit deletes the kernel's copy (<see cref="Enforcer.InstallEarly"/>),
/// whatever its kind (XDP, tcx, or a netfilter link next to its priority, <see cref="MoveBackPriorities"/>), new or one
/// BPF already runs (a device's XDP/tcx link the chain joins).
/// </summary>
internal static class TakenBack
{
    /// <summary>The attach points of <paramref name="bpf"/> that run a chain of <paramref name="wasKernel"/>.</summary>
    public static HashSet<string> Of(Ruleset bpf, LiftResult lift, IReadOnlySet<ChainId> wasKernel) =>
        AttachUnit.Group(bpf)
            .Where(u => u.Chains.Any(c => lift.Origins.TryGetValue(c.Name, out var id) && wasKernel.Contains(id)))
            .Select(u => u.Key).ToHashSet();
}
