using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// What one kernel preparation hands the kernel besides its tables, kept by the commit: the start points of the quotas
/// it takes over (<see cref="KernelQuotaStarts"/>) and BPF's part of the rule counters both sides counted that the
/// kernel's rule alone counts from now on (<see cref="KernelCounterView.Carry"/>), to which the commit adds what BPF
/// counted after the counters sent with BPF's count were read (<see cref="Sent"/>, <see cref="CounterCarry.Remainder"/>). Returned, not kept in a field: of
/// the fallback rounds that prepare the kernel again, the last one's is what the commit applies. So are the notes of the
/// limits BPF moves to the kernel with a bucket it has not full (<see cref="LimitNotes"/>, <see cref="LimitMoves"/>) and the
/// limit slots the transaction renews (<see cref="RenewedLimits"/>: full on both sides from the commit, their notes go).
/// </summary>
internal sealed record KernelPrepared(IReadOnlyList<QuotaStart> QuotaStarts, IReadOnlyList<(CounterRef At, CounterValue Bpf)> Carried,
    IReadOnlyList<CounterSent> Sent)
{
    public IReadOnlyDictionary<StatefulKey, string> LimitNotes { get; init; } = new Dictionary<StatefulKey, string>();
    public IReadOnlySet<ulong> RenewedLimits { get; init; } = new HashSet<ulong>();
    /// <summary>The named counters and quotas BPF takes over that the kernel commit keeps for the read after it (<see cref="LingeringObjects"/>).</summary>
    public LingeringObjects Lingering { get; init; } = LingeringObjects.None;

    /// <summary>A round that gives the kernel nothing (no kernel tables, or bpf-only).</summary>
    public static readonly KernelPrepared None = new([], [], []);
}
