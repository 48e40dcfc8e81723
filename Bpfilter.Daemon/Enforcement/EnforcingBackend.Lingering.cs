using Bpfilter.Daemon.Placement;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Kernel;
using Nft.Lifter;
using Nft.Netlink;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Named counters and quotas leaving the kernel for BPF (<see cref="LingeringObjects"/>): kept in the kernel commit that
/// takes their rules away, read once it is live, deleted in a second kernel transaction after the swap. Fail-closed:
/// the committed placement counts them in the kernel until the swap and in BPF after it, never both (nothing the
/// daemon lists goes back: the kernel's object only grows until the commit, and BPF starts from it). A second
/// transaction that fails leaves them in the kernel, where no rule names them and nothing lists them: the next
/// transaction's batch deletes them (its placement holds them no more). A daemon that dies between the two starts from
/// the state of the commit before (exported after each commit), in whose kernel tables the objects kept alone do not
/// match: its adoption marks such a table stale, and its first transaction deletes or recreates it.
/// </summary>
public sealed partial class EnforcingBackend
{
    /// <summary>The named counters and quotas the committed placement counts in the kernel that BPF counts after this transaction.</summary>
    LingeringObjects Lingering(KernelPlacement kernel, IReadOnlyList<SourceTable> desired, PlacementPlan plan, LiftResult lift, KernelRenewal renewal)
    {
        if (_current == null || _plan == null) return LingeringObjects.None;
        var (current, committed) = (_current, _plan);
        return LingeringObjects.Of(kernel.Placed, desired, c => renewal.Renews(c, c.ObjectType),
            c => c.ObjectType == Nft.Bytecode.NftObjectType.Quota ? CounterSides.Quota(current, committed, c) : CounterSides.Of(current, committed, c),
            c => c.ObjectType == Nft.Bytecode.NftObjectType.Quota ? CounterSides.Quota(lift, plan, c) : CounterSides.Of(lift, plan, c));
    }

    /// <summary>
    /// <paramref name="seeds"/> and <paramref name="quotas"/> with the count of each object the kernel commit kept
    /// (<paramref name="lingering"/>), read now that it is live: no rule names it any more, so it counts nothing more
    /// but a packet already inside the old rules on another CPU. Exact where no program counted it before the commit
    /// (<paramref name="early"/> false), or where every rule naming it drops what it counts (<see cref="LingeringObjects.Drops"/>),
    /// as for a rule's counter (<see cref="FinalSeeds"/>, <see cref="FinalQuotas"/>); otherwise the seed read beside the
    /// early programs' stands. A quota BPF's early programs already spend is given what the copy consumed since the read
    /// before (atomically: <see cref="Bpfilter.Backend.Enforcement.Enforcer.AddQuotaEarly"/>).
    /// </summary>
    (IReadOnlyList<CounterSeed>, IReadOnlyList<QuotaSeed>) LingeringFinals(IReadOnlyList<SourceTable> sources, LingeringObjects lingering,
        IReadOnlyList<CounterSeed> seeds, IReadOnlyList<QuotaSeed> kernelSeeds, IReadOnlyList<QuotaSeed> quotas, bool early)
    {
        if (!lingering.Any) return (seeds, quotas);
        var finals = new Dictionary<CounterRef, CounterValue>();
        try
        {
            _kernelCounters!.Invalidate();
            foreach (var c in lingering.Refs)
                if (KernelCount(c) is { } v) finals[c] = v;
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException)
        {
            _log($"reading the named objects the kernel commit kept failed, carried as read before the commit: {e.Message}");
            return (seeds, quotas);
        }
        int exact = 0;
        var estimated = new List<CounterRef>();
        bool Exact(CounterRef at)
        {
            if (early && !LingeringObjects.Drops(sources, at))
            {
                estimated.Add(at);
                return false;
            }
            exact++;
            return true;
        }
        var counted = seeds.Select(seed => seed.At is { } at && finals.TryGetValue(at, out var final) && (early ? seed.Early != null : seed.Early == null) && Exact(at)
            ? seed with { Kernel = final, Early = early ? default(CounterValue) : null }
            : seed).ToList();
        var replaced = new Dictionary<QuotaSeed, QuotaSeed>();
        foreach (var seed in kernelSeeds)
        {
            if (seed.At is not { ObjectName: not null } at || !finals.TryGetValue(at, out var final) || !Exact(at)) continue;
            if (!early) replaced[seed] = seed with { Used = final.Bytes };
            else if (final.Bytes > seed.Used) _enforcer.AddQuotaEarly(seed.Slot, final.Bytes - seed.Used);
        }
        _log($"kernel commit: {exact} named object(s) carried from the kernel's count once its commit was live (kept in it for the read)" +
            (estimated.Count == 0 ? "" : $"; {string.Join(", ", estimated)} counted by both sides in the overlap: carried as read beside the early programs"));
        return (counted, [.. quotas.Select(q => replaced.GetValueOrDefault(q, q))]);
    }

    /// <summary>The second kernel transaction: deletes the objects the kernel commit kept (and a table that held only them).</summary>
    void DeleteLingering(LingeringObjects lingering, PlacementPlan plan)
    {
        try
        {
            if (_fault("lingering-delete") is { } injected) throw injected;
            _kernel!.Prepare(lingering.Without(_kernel.Placed, plan.KernelTables));
            _kernel.Commit();
            _log($"kernel commit: {lingering.Objects.Count} named object(s) kept for the read deleted");
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException or InvalidOperationException)
        {
            _kernel!.Abort();
            _log($"deleting the {lingering.Objects.Count} named object(s) the kernel commit kept failed: no rule names them and BPF counts them; " +
                $"the next transaction deletes them: {e.Message}");
        }
    }
}
