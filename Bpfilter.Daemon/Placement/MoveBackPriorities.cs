using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Where the BPF_NETFILTER link of a chain moving back from the kernel's nf_tables may run while the kernel's copy of the
/// chain still holds the chain's priority P (a link cannot share it: EBUSY). A free priority next to P (P-1, then P+1)
/// runs in the same order relative to every other hook of that family and hook as P does, provided no other hook sits
/// at P: no integer lies between them, and a taken one refuses the link (EBUSY). bpfilterd's own chains at P are the
/// kernel copy's alone (an own BPF chain there is refused EBUSY, an own kernel chain there keeps this one in the kernel,
/// <see cref="PlacementPlan"/> rule (b)). The kernel's own hooks cannot be listed here (this kernel has no
/// NFNL_SUBSYS_HOOK dump: CONFIG_NETFILTER_NETLINK_HOOK is not set), so their priorities are known ones: a chain at one
/// of them stays in the kernel, and a link never takes one (the hook might register there later, e.g. conntrack once
/// switched on, and run on the wrong side of it). Both sides then filter with the same rules until the kernel commit
/// removes the copy (<see cref="Enforcer.InstallEarly"/>). The link keeps that priority for as long as its attach point
/// lives: taking P back would mean a second overlap, in which one program runs twice per packet and counts it twice,
/// for an order that is the same; a kernel chain that later takes the link's priority moves the chain to the kernel too
/// (<see cref="PlacementPlan"/>).
/// </summary>
internal static class MoveBackPriorities
{
    /// <summary>
    /// The priorities the kernel registers hooks of its own at on ip/ip6 hook lists (include/uapi/linux/netfilter_ipv4.h,
    /// _ipv6.h): conntrack defrag, SELinux first and last, conntrack, NAT destination and source (the NAT core's own
    /// hooks once a nat chain exists), conntrack helper, confirm.
    /// </summary>
    static readonly HashSet<int> KernelOwn = [-400, -225, -200, -100, 100, 225, 300, int.MaxValue, int.MinValue];

    /// <summary>
    /// Per new netfilter attach point of <paramref name="bpf"/> whose chains all ran in the kernel before this commit
    /// (<paramref name="wasKernel"/>), the priorities its link may take instead of its own, in the order to try; an empty
    /// list when its own is one of the kernel's (the chain then stays in the kernel, the refusal names why).
    /// </summary>
    public static Dictionary<string, IReadOnlyList<int>> Of(Ruleset bpf, LiftResult lift, IReadOnlySet<ChainId> wasKernel,
        IReadOnlyCollection<string> live, IReadOnlyDictionary<string, int> moved)
    {
        var result = new Dictionary<string, IReadOnlyList<int>>();
        var units = AttachUnit.Group(bpf);
        // priorities the plan's other netfilter links take, on each hook list
        var taken = units.Where(u => u.Hook is NetfilterHook).Select(u => (NetfilterHook)u.Hook)
            .Select(h => (h.Family, h.Point, moved.TryGetValue(h.AttachPoint, out var at) ? at : h.Priority)).ToHashSet();
        foreach (var unit in units)
        {
            if (unit.Hook is not NetfilterHook n || live.Contains(unit.Key)) continue;
            if (!unit.Chains.All(c => lift.Origins.TryGetValue(c.Name, out var id) && wasKernel.Contains(id))) continue;
            result[unit.Key] = KernelOwn.Contains(n.Priority) ? [] :
                new[] { n.Priority - 1, n.Priority + 1 }.Where(p => !KernelOwn.Contains(p) && !taken.Contains((n.Family, n.Point, p))).ToList();
        }
        return result;
    }
}
