using Nft.Engine;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// What one kernel preparation hands the kernel besides its tables, kept by the commit: the start points of the quotas
/// it takes over (<see cref="KernelQuotaStarts"/>) and BPF's part of the rule counters both sides counted that the
/// kernel's rule alone counts from now on (<see cref="KernelCounterView.Carry"/>), to which the commit adds what BPF
/// counted after the counters sent with BPF's count were read (<see cref="Sent"/>, <see cref="CounterCarry.Remainder"/>). Returned, not kept in a field: of
/// the fallback rounds that prepare the kernel again, the last one's is what the commit applies.
/// </summary>
internal sealed record KernelPrepared(IReadOnlyList<QuotaStart> QuotaStarts, IReadOnlyList<(CounterRef At, CounterValue Bpf)> Carried,
    IReadOnlyList<CounterSent> Sent)
{
    /// <summary>A round that gives the kernel nothing (no kernel tables, or bpf-only).</summary>
    public static readonly KernelPrepared None = new([], [], []);
}
