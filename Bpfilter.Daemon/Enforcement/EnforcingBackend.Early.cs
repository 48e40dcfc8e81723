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
/// its commit instead (<see cref="FinalSeeds"/>), and the carry is exact as in the first case.</item>
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
    /// <paramref name="seeds"/> with the kernel's final counts of the rules and objects its commit deleted
    /// (<see cref="KernelPlacement.Deleted"/>, from the DELRULE/DELOBJ notifications it echoed), where they make the carry
    /// exact: a counter no program counted before the commit (<paramref name="early"/> false: BPF takes over at the swap,
    /// after the kernel stopped), and a `counter drop` rule beside an early program, either order: where the program runs
    /// first the kernel's copy stopped at the install, where it runs after the copy (a link at P+1) it saw none of the
    /// packets the copy's rule counted and dropped, until the commit, after which the copy counts no more. Both sides'
    /// totals then add up with nothing counted twice. Otherwise (a rule that lets what it counts through, counted by both)
    /// the seed read beside the early programs' stands. A counter whose notification is missing keeps the seed read
    /// before the commit, and is logged.
    /// </summary>
    IReadOnlyList<CounterSeed> FinalSeeds(IReadOnlyList<SourceTable> sources, IReadOnlyList<CounterSeed> seeds, bool early, LingeringObjects lingering)
    {
        if (_kernel!.Deleted is not { } deleted) return seeds;
        int exact = 0;
        var missing = new List<CounterRef>();
        var kept = lingering.Refs.ToHashSet();
        var result = seeds.Select(seed =>
        {
            if (seed.At is not { } at || kept.Contains(at) || (early ? seed.Early == null || !Drops(sources, at) : seed.Early != null)) return seed;
            if (_kernelCounters!.Final(deleted, at) is not { } final)
            {
                missing.Add(at);
                return seed;
            }
            exact++;
            return seed with { Kernel = final, Early = early ? default(CounterValue) : null };
        }).ToList();
        if (exact > 0 || missing.Count > 0)
            _log($"kernel commit: {exact} counter(s) carried from the kernel's final count (its DELRULE/DELOBJ notifications)" +
                (missing.Count == 0 ? "" : $"; no notification for {string.Join(", ", missing)}: carried as read before the commit"));
        return result;
    }

    /// <summary>
    /// <paramref name="quotas"/> with the kernel's final consumption of the rules' quotas BPF takes over (<paramref name="kernelSeeds"/>,
    /// read before the commit) from the DELRULE notifications its commit echoed (NFTA_QUOTA_CONSUMED of the rule's quota
    /// expression), where that makes the carry exact. Not named quotas: nf_tables' DELOBJ notification has no NFTA_OBJ_DATA
    /// (Linux 6.18: table, name, type and handle only), so a named quota keeps the read before. No program spent them
    /// before the commit (<paramref name="early"/> false): BPF starts from the final consumption. Programs installed early spend them from the read before: they are given what the copy
    /// consumed since when every packet the quota consumes while not over is dropped by its rule (<see cref="QuotaDrops"/>):
    /// where the program runs first the copy saw none of those from the install on, where it runs after the copy (a link
    /// at P+1, tc egress) the program saw none of those the copy consumed until its commit, so nothing is consumed twice.
    /// Once over, a packet one side lets through may be consumed by both, so `used` may then list more than the quota saw,
    /// never less, and the verdicts are the same (both are over). A quota that lets through what it consumes (`quota over
    /// N drop` under N, or no drop) is consumed by both in the overlap: it keeps the read before the install, and loses
    /// what the copy consumed between that read and the install. A quota whose notification is missing keeps the read
    /// before, and is logged. A packet already inside the copy's rules on another CPU when the notification is built may
    /// still be consumed there, and is not carried.
    /// </summary>
    IReadOnlyList<QuotaSeed> FinalQuotas(IReadOnlyList<SourceTable> sources, IReadOnlyList<QuotaSeed> kernelSeeds, IReadOnlyList<QuotaSeed> quotas, bool early)
    {
        if (_kernel!.Deleted is not { } deleted) return quotas;
        var finals = new Dictionary<QuotaSeed, QuotaSeed>();
        var missing = new List<CounterRef>();
        int exact = 0;
        foreach (var seed in kernelSeeds)
        {
            if (seed.At is not { ObjectName: null } at || early && !QuotaDrops(sources, at)) continue;
            if (_kernelCounters!.Final(deleted, at) is not { } final)
            {
                missing.Add(at);
                continue;
            }
            exact++;
            if (!early) finals[seed] = seed with { Used = final.Bytes };
            else if (final.Bytes > seed.Used) _enforcer.AddQuotaEarly(seed.Slot, final.Bytes - seed.Used);
        }
        if (exact > 0 || missing.Count > 0)
            _log($"kernel commit: {exact} quota(s) carried from the kernel's final consumption (its DELRULE notifications)" +
                (missing.Count == 0 ? "" : $"; no notification for {string.Join(", ", missing)}: carried as read before the commit"));
        return [.. quotas.Select(q => finals.GetValueOrDefault(q, q))];
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
