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
/// the state of the commit before (exported after each commit; after it, when the second failed): its adoption takes
/// each table as the part of that state the kernel holds, an object no rule names as extra (Nft.Kernel's HeldPart), and
/// its first transaction adds the rest or deletes the object in place: the chains the kernel kept in the table go on
/// with their own counters, quotas and limits, and the object keeps its final count (placed again) or goes (in BPF).
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
    /// The kernel's count of each object its commit kept (<paramref name="lingering"/>), read now that it is live: no rule
    /// names it any more, so it counts nothing more but a packet already inside the old rules on another CPU. Null when the
    /// read failed: they are carried as read before the commit (<see cref="Finals"/>).
    /// </summary>
    Dictionary<CounterRef, CounterValue>? LingeringReads(LingeringObjects lingering)
    {
        var read = new Dictionary<CounterRef, CounterValue>();
        if (!lingering.Any) return read;
        try
        {
            _kernelCounters!.Invalidate();
            foreach (var c in lingering.Refs)
                if (KernelCount(c) is { } v) read[c] = v;
            return read;
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException)
        {
            _log($"reading the named objects the kernel commit kept failed, carried as read before the commit: {e.Message}");
            return null;
        }
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
