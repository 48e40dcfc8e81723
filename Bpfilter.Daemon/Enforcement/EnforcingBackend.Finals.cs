using Bpfilter.Daemon.Placement;
using Nft.Bytecode.Objects;
using Nft.Engine;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The kernel's final counts of the counters and quotas BPF takes over, once the kernel commit is live: a rule's counter
/// or quota from the DELRULE notifications the commit echoed (<see cref="Nft.Kernel.KernelPlacement.Deleted"/>, the
/// quota's NFTA_QUOTA_CONSUMED), a named counter or quota from its read after the commit kept it (<see cref="LingeringObjects"/>:
/// nf_tables' DELOBJ notification carries no NFTA_OBJ_DATA, Linux 6.18). Each is exact where no program counted before
/// the commit (early false: BPF takes over at the swap, after the kernel stopped), or where every packet it counts (a
/// quota: consumes while not over) is dropped by its rule (<see cref="Drops"/>, <see cref="QuotaDrops"/>,
/// <see cref="LingeringObjects.Drops"/>) beside a program installed early, either order: where the program runs first
/// the kernel's copy stopped at the install, where it runs after the copy (a link at P+1, tc egress) it saw none of
/// those the copy counted, until the commit, after which the copy counts no more. Otherwise (counted by both in the
/// overlap) the seed read beside the early programs stands, as does one whose final count is missing (logged). A quota
/// an early program already spends is given what the copy consumed since the read before (atomically:
/// <see cref="Bpfilter.Backend.Enforcement.Enforcer.AddQuotaEarly"/>); once over, a packet one side lets through may be
/// consumed by both, so `used` may then list more, never less, with the same verdicts. A packet already inside the
/// copy's rules on another CPU as the commit notifies may still be counted there, and is not carried.
/// </summary>
public sealed partial class EnforcingBackend
{
    /// <summary>How the carry of one counter or quota came out.</summary>
    enum FinalCarry { Exact, Missing, Overlapped }

    /// <summary><paramref name="seeds"/> and <paramref name="quotas"/> with the kernel's final counts where they make the carry exact (above), in one pass over each.</summary>
    (IReadOnlyList<CounterSeed>, IReadOnlyList<QuotaSeed>) Finals(IReadOnlyList<SourceTable> sources, LingeringObjects lingering,
        IReadOnlyList<CounterSeed> seeds, IReadOnlyList<QuotaSeed> kernelSeeds, IReadOnlyList<QuotaSeed> quotas, bool early)
    {
        var deleted = _kernel!.Deleted;
        var kept = lingering.Refs.ToHashSet();
        var read = LingeringReads(lingering);
        var carries = new List<(CounterRef At, bool Quota, FinalCarry Carry)>();
        CounterValue? Final(CounterRef at, bool quota)
        {
            CounterValue? final;
            if (kept.Contains(at))
            {
                if (read == null || !read.TryGetValue(at, out var value)) return null; // a failed read is logged by LingeringReads
                if (early && !LingeringObjects.Drops(sources, at))
                {
                    carries.Add((at, quota, FinalCarry.Overlapped));
                    return null;
                }
                final = value;
            }
            else
            {
                // a named quota has no final consumption but its read (kept); a named counter's DELOBJ is reported missing
                if (deleted == null || quota && at.ObjectName != null || early && !(quota ? QuotaDrops(sources, at) : Drops(sources, at))) return null;
                final = _kernelCounters!.Final(deleted, at);
            }
            carries.Add((at, quota, final == null ? FinalCarry.Missing : FinalCarry.Exact));
            return final;
        }
        var counted = new List<CounterSeed>(seeds.Count);
        foreach (var seed in seeds)
            counted.Add(seed.At is { } at && (seed.Early != null) == early && Final(at, quota: false) is { } final
                ? seed with { Kernel = final, Early = early ? default(CounterValue) : null }
                : seed);
        var replaced = new Dictionary<QuotaSeed, QuotaSeed>();
        foreach (var seed in kernelSeeds)
        {
            if (seed.At is not { } at || Final(at, quota: true) is not { } final) continue;
            if (!early) replaced[seed] = seed with { Used = final.Bytes };
            else if (final.Bytes > seed.Used) _enforcer.AddQuotaEarly(seed.Slot, final.Bytes - seed.Used);
        }
        LogFinals(carries.Where(c => !kept.Contains(c.At) && !c.Quota).ToList(), "counter(s) carried from the kernel's final count (its DELRULE/DELOBJ notifications)");
        LogFinals(carries.Where(c => !kept.Contains(c.At) && c.Quota).ToList(), "quota(s) carried from the kernel's final consumption (its DELRULE notifications)");
        var named = carries.Where(c => kept.Contains(c.At)).ToList();
        if (read != null && lingering.Any)
            _log($"kernel commit: {named.Count(c => c.Carry == FinalCarry.Exact)} named object(s) carried from the kernel's count once its commit was live (kept in it for the read)" +
                (named.Any(c => c.Carry == FinalCarry.Overlapped)
                    ? $"; {string.Join(", ", named.Where(c => c.Carry == FinalCarry.Overlapped).Select(c => c.At))} counted by both sides in the overlap: carried as read beside the early programs"
                    : ""));
        return (counted, [.. quotas.Select(q => replaced.GetValueOrDefault(q, q))]);
    }

    void LogFinals(IReadOnlyList<(CounterRef At, bool Quota, FinalCarry Carry)> carries, string what)
    {
        if (carries.Count == 0) return;
        var missing = carries.Where(c => c.Carry == FinalCarry.Missing).Select(c => c.At).ToList();
        _log($"kernel commit: {carries.Count - missing.Count} {what}" +
            (missing.Count == 0 ? "" : $"; no notification for {string.Join(", ", missing)}: carried as read before the commit"));
    }
}
