using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Daemon.Placement;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Kernel;
using Nft.Netlink;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Counters of chains taken back from the kernel whose programs were installed before the kernel commit
/// (<see cref="Enforcer.InstallEarly"/>): from the install until the kernel commit both copies run, one before the other
/// on each packet, and every packet must be counted once. The rule, by hook order:
/// <list type="bullet">
/// <item>The early program runs first (XDP and tc ingress before nf_tables' netdev ingress, a netfilter link at P-1
/// before the copy at P) and the counter's rule drops what it counts (`counter drop`): no packet it counts reaches the
/// kernel's copy, whose count stops at the install. The kernel's count read at any time after the install plus all the
/// early programs counted is exact by construction.</item>
/// <item>Otherwise the kernel's copy counts some packets the early programs count too (those the first lets through),
/// and no read is atomic with the other side's: the kernel's count is read between two reads of the early programs'
/// (the closest pair of a few), and what they had counted at that moment is taken as the midpoint, exact to within half
/// the packets counted between the two reads (logged as the bound). When the early program runs after the copy (a link
/// at P+1, tc egress) and the rule drops, the program sees none of what the copy counts: the kernel's count is taken at
/// its commit instead (<see cref="Finals"/>), and the carry is exact as in the first case.</item>
/// </list>
/// A kernel commit failing after the install keeps the kernel's chains: what the early programs dropped where they ran
/// first never reached the copy, and is carried to the kernel's listing (<see cref="CarryEarlyDrops"/>).
/// </summary>
public sealed partial class EnforcingBackend
{
    /// <summary>Reads of the kernel's counts between two of the early programs' (the closest pair per counter is kept).</summary>
    const int OverlapReads = 5;

    CounterValue EarlyCount(ulong slot)
    {
        var (p, b) = _enforcer.EarlyCounter(slot);
        return new CounterValue(p, b);
    }

    /// <summary>Whether the kernel's copy of counter <paramref name="at"/> stopped counting at the early install (see the rule above).</summary>
    bool StopsAtInstall(IReadOnlyList<SourceTable> sources, CounterSeed seed) =>
        seed.At is { } at && _enforcer.EarlyRunsFirst(seed.Slot) && Drops(sources, at);

    /// <summary>
    /// <paramref name="seeds"/> once programs run beside the kernel's copies of their chains: each counter the kernel no
    /// longer counts after its commit is read again, and BPF lists that and what the early programs counted since
    /// (<see cref="CounterSeed.Overlapped"/>), by the rule above.
    /// </summary>
    IReadOnlyList<CounterSeed> OverlapSeeds(IReadOnlyList<SourceTable> sources, IReadOnlyList<CounterSeed> seeds)
    {
        var paired = seeds.Where(s => s.At != null).ToList();
        if (paired.Count == 0) return seeds;
        var stops = paired.Select(s => StopsAtInstall(sources, s)).ToList();
        var best = paired.ToArray();
        var spread = paired.Select(_ => ulong.MaxValue).ToArray();
        try
        {
            for (int i = 0; i < OverlapReads && spread.Any(g => g > 0); i++)
            {
                var first = paired.Select(s => EarlyCount(s.Slot)).ToList();
                _kernelCounters!.Invalidate();
                var kernel = paired.Select(s => KernelCount(s.At!.Value)).ToList();
                var second = paired.Select(s => EarlyCount(s.Slot)).ToList();
                for (int j = 0; j < paired.Count; j++)
                {
                    if (kernel[j] is not { } k) continue; // not listed: the count read before the install stands
                    var gap = stops[j] ? 0 : second[j].Packets - first[j].Packets;
                    if (gap >= spread[j]) continue;
                    spread[j] = gap;
                    var early = stops[j] ? default
                        : new CounterValue((first[j].Packets + second[j].Packets) / 2, (first[j].Bytes + second[j].Bytes) / 2);
                    best[j] = paired[j] with { Kernel = k, Early = early };
                }
            }
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException or BpfException)
        {
            _log($"reading the kernel's counts beside the programs installed early failed, carrying those read before: {e.Message}");
            return seeds;
        }
        var estimated = spread.Where((g, j) => !stops[j] && g != ulong.MaxValue).ToList();
        _log($"early install: {stops.Count(s => s)} counter(s) carried exactly (the kernel's copy stopped counting them at the install), " +
            $"{estimated.Count} to within {(estimated.Count == 0 ? 0 : (estimated.Max() + 1) / 2)} packet(s) (the kernel's count read between two reads of the early programs')");
        return [.. seeds.Where(s => s.At == null), .. best];
    }

    /// <summary>
    /// Whether every packet the rule's quota <paramref name="at"/> consumes while not over is dropped: it matches until it
    /// is over (not `over`) and a drop verdict follows it.
    /// </summary>
    static bool QuotaDrops(IReadOnlyList<SourceTable> sources, CounterRef at) =>
        Expressions(sources, at) is { } exprs && at.ExpressionIndex < exprs.Count
        && exprs[at.ExpressionIndex] is QuotaExpr q && ((q.Flags ?? 0) & QuotaExpr.NFT_QUOTA_F_INV) == 0 && DropsAfter(exprs, at.ExpressionIndex);

    /// <summary>
    /// The kernel commit failed after the early install: the kernel keeps its chains, and the packets a `counter drop` rule
    /// dropped in an early program that ran first never reached the kernel's copy: they are added to its listing
    /// (<see cref="KernelCounterView.Carry"/>). The others went on to the copy, which counted them.
    /// </summary>
    void CarryEarlyDrops(IReadOnlyList<SourceTable> sources, IReadOnlyList<CounterSeed> seeds)
    {
        foreach (var seed in seeds)
            if (seed.At is { ObjectName: null } at && StopsAtInstall(sources, seed) && EarlyCount(seed.Slot) is { Packets: > 0 } dropped)
                _kernelCounters!.Carry(at.Family, at.Table, at.RuleHandle, at.ExpressionIndex, dropped);
    }

    /// <summary>Whether the rule of counter <paramref name="at"/> drops every packet it counts: the counter is followed by a drop verdict.</summary>
    static bool Drops(IReadOnlyList<SourceTable> sources, CounterRef at) =>
        Expressions(sources, at) is { } exprs && DropsAfter(exprs, at.ExpressionIndex);

    /// <summary>The expressions of the rule of <paramref name="at"/> in <paramref name="sources"/>; null for a named object.</summary>
    static IReadOnlyList<Expression>? Expressions(IReadOnlyList<SourceTable> sources, CounterRef at) => at.ObjectName != null ? null
        : sources.FirstOrDefault(t => t.Family == at.Family && t.Name == at.Table)?.Chains.FirstOrDefault(c => c.Name == at.Chain)
            ?.Rules.FirstOrDefault(r => r.Handle == at.RuleHandle)?.Expressions;

    /// <summary>Whether expression <paramref name="i"/> of a rule is followed by a drop verdict.</summary>
    static bool DropsAfter(IReadOnlyList<Expression> exprs, int i) => i + 1 < exprs.Count && exprs[i + 1] is ImmediateExpr { Verdict.Code: Verdict.Drop };
}
