using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>Where a base chain runs.</summary>
public enum PlacementSide
{
    /// <summary>Compiled to BPF (XDP, tcx or a BPF_NETFILTER link).</summary>
    Bpf,
    /// <summary>In the kernel's own nf_tables, same family, hook and priority.</summary>
    Kernel,
}

/// <summary>
/// One base chain's placement and, for a kernel-placed chain, why: the lifter's refusal (rule and
/// expression) or the ordering constraint that moved it there. <see cref="Refusal"/> is the
/// refusal to report under --placement bpf-only.
/// </summary>
public sealed record ChainPlacement(ChainId Chain, PlacementSide Side, string Reason, LiftRefusal? Refusal = null)
{
    public override string ToString() => Side == PlacementSide.Bpf ? $"{Chain}: BPF" : $"{Chain}: kernel nf_tables ({Reason})";
}
