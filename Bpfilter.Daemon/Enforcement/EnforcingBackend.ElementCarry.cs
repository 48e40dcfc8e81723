using Bpfilter.Backend.Enforcement;
using Bpfilter.Daemon.Placement;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Kernel;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>The state of set elements' statements carried across a placement move (<see cref="ElementCarry"/>).</summary>
public sealed partial class EnforcingBackend
{
    /// <summary>The kernel's tables to place, the elements of each set the kernel takes over from BPF sent with BPF's state.</summary>
    IReadOnlyList<SourceTable> BpfElementsToKernel(IReadOnlyList<SourceTable> placed, PlacementPlan plan, IReadOnlyList<(byte, string)> recreated,
        IReadOnlyList<SetDelta> deltas)
    {
        if (_current == null || _plan == null) return placed;
        var committed = _plan;
        return ElementCarry.ToKernel(placed,
            s => plan.KernelSets.Contains((s.Family, s.Table, s.Set)) && !committed.KernelSets.Contains((s.Family, s.Table, s.Set))
                && !recreated.Contains((s.Family, s.Table)),
            AddedBy(deltas), ReadElementCounter, ReadElementQuota);
    }

    /// <summary>The element counter and quota slots BPF takes over from the kernel, with the kernel's state.</summary>
    (IReadOnlyList<CounterSeed> Counters, IReadOnlyList<QuotaSeed> Quotas) KernelElementsToBpf(IReadOnlyList<SourceTable> sources, LiftResult lift,
        PlacementPlan plan, IReadOnlyList<(byte, string)> recreated, IReadOnlyList<SetDelta> deltas)
    {
        if (_kernel == null || _plan == null || _plan.KernelSets.Count == 0) return ([], []);
        var committed = _plan;
        return ElementCarry.ToBpf(sources,
            s => committed.KernelSets.Contains((s.Family, s.Table, s.Set)) && !plan.KernelSets.Contains((s.Family, s.Table, s.Set))
                && !recreated.Contains((s.Family, s.Table)),
            AddedBy(deltas), s => KernelElements(_kernel, s), lift);
    }

    /// <summary>
    /// The sets the kernel's packet path writes, each set the kernel takes over from BPF's packet path with the elements
    /// BPF holds (<see cref="ElementCarry.Live"/>): a set written from the packet path keeps its elements across the move.
    /// </summary>
    IReadOnlyList<PacketPathSet> BpfWrittenToKernel(IEnumerable<PacketPathSet> sets, IReadOnlyList<SourceTable> placed, IReadOnlyList<(byte, string)> recreated)
    {
        var all = sets.ToList();
        if (_current == null || _plan == null) return all;
        return all.Select(w => !recreated.Contains((w.Family, w.Table))
            && placed.FirstOrDefault(t => t.Family == w.Family && t.Name == w.Table)?.FindSet(w.Set) is { } set
            && BpfWrittenElements(w.Family, w.Table, w.Set) is { } live
                ? w with { Live = ElementCarry.Live(set, live, w.Added, w.Removed) }
                : w).ToList();
    }

    /// <summary>
    /// Per IR set name, the elements the kernel's packet path added to each set it wrote that BPF's packet path takes over
    /// (<see cref="ElementCarry.ToBpfPacketPath"/>): read while the kernel still holds the set.
    /// </summary>
    Dictionary<string, IReadOnlyList<PacketPathSeed>> KernelWrittenToBpf(IReadOnlyList<SourceTable> sources, LiftResult lift, PlacementPlan plan,
        IReadOnlyList<(byte, string)> recreated, IReadOnlyList<SetDelta> deltas)
    {
        var seeds = new Dictionary<string, IReadOnlyList<PacketPathSeed>>();
        if (_kernel == null || _plan == null || _plan.KernelWrittenSets.Count == 0) return seeds;
        foreach (var id in _plan.KernelWrittenSets)
        {
            if (plan.KernelSets.Contains(id) || recreated.Contains((id.Family, id.Table)) || !lift.SetEncoders.TryGetValue(id, out var encoder)
                || sources.FirstOrDefault(t => t.Family == id.Family && t.Name == id.Table)?.FindSet(id.Set) is not { } set
                || KernelElements(_kernel, new ElementCarry.SetId(id.Family, id.Table, id.Set)) is not { } listed) continue;
            var delta = deltas.FirstOrDefault(d => d.Family == id.Family && d.Table == id.Table && d.Set == id.Set);
            seeds[encoder.IrName] = ElementCarry.ToBpfPacketPath(set, listed, delta?.Added ?? [], delta?.Removed ?? [], encoder,
                Bpfilter.Backend.Libbpf.KernelClock.Jiffies64(), (ulong)(Bpfilter.Backend.Libbpf.KernelClock.TickMs ?? 1),
                (e, why) => _log($"set {id.Set} of table {id.Table}: an element the kernel's packet path added is not carried to BPF: {why}"));
        }
        return seeds;
    }

    /// <summary>
    /// The kernel's sets as one Prepare read them: the placement's decision to keep a set in the kernel
    /// (<see cref="KernelHeldSets"/>) and the seeds of the sets that leave it come from the same listing.
    /// </summary>
    readonly Dictionary<ElementCarry.SetId, IReadOnlyList<SetElement>?> _kernelListings = [];

    /// <summary>
    /// Adds to <paramref name="held"/> each set the kernel's packet path writes that <paramref name="plan"/> would take
    /// from the kernel though it holds elements whose state BPF cannot be given (<see cref="ElementCarry.Unseedable"/>),
    /// logged; whether it added one (the plan is then made again).
    /// </summary>
    bool KernelHeldSets(IReadOnlyList<SourceTable> sources, PlacementPlan plan, IReadOnlyList<(byte, string)> recreated,
        IReadOnlyList<SetDelta> deltas, Dictionary<(byte Family, string Table, string Set), string> held)
    {
        if (_kernel == null || _plan == null) return false;
        bool added = false;
        foreach (var id in _plan.KernelWrittenSets)
        {
            if (plan.KernelSets.Contains(id) || held.ContainsKey(id) || recreated.Contains((id.Family, id.Table))
                || sources.FirstOrDefault(t => t.Family == id.Family && t.Name == id.Table) is not { } table
                || table.FindSet(id.Set) is not { } set) continue;
            var delta = deltas.FirstOrDefault(d => d.Family == id.Family && d.Table == id.Table && d.Set == id.Set);
            // unread (the kernel's listing failed): it may hold such elements, so it stays (a meter's set is read by the
            // meter's name, which the kernel keeps: KernelForm.AnonymousName)
            var why = KernelElements(_kernel, new ElementCarry.SetId(id.Family, id.Table, id.Set)) is { } listed
                ? ElementCarry.Unseedable(set, listed, delta?.Added ?? [], delta?.Removed ?? [])
                : ElementCarry.MayCarryLimits(table, set)
                    ? "whose elements the kernel's packet path may have added with a limit, and the kernel's listing of it failed"
                    : null;
            if (why == null) continue;
            held[id] = why;
            added = true;
            _log($"set {id.Set} of table {id.Table} stays in the kernel's nf_tables with the chains that reach it: {why}");
        }
        return added;
    }

    IReadOnlyList<SetElement>? KernelElements(KernelPlacement kernel, ElementCarry.SetId s)
    {
        if (_kernelListings.TryGetValue(s, out var read)) return read;
        try
        {
            return _kernelListings[s] = kernel.Elements(s.Family, s.Table, s.Set);
        }
        catch (Exception e) when (e is KernelNfTablesException or IOException)
        {
            _log($"reading set {s.Set} of table {s.Table} from the kernel failed: its elements' counters and quotas start anew in BPF: {e.Message}");
            return null;
        }
    }

    /// <summary>Whether the batch adds the element (its key): a new element, whose statements start from what the batch gave them.</summary>
    static Func<ElementCarry.SetId, SetElement, bool> AddedBy(IReadOnlyList<SetDelta> deltas)
    {
        var added = deltas.Where(d => d.Added.Count > 0)
            .SelectMany(d => d.Added.Select(e => (d.Family, d.Table, d.Set, CounterKey.ElementKey(e.Key, e.KeyEnd)))).ToHashSet();
        return (s, e) => added.Count > 0 && added.Contains((s.Family, s.Table, s.Set, CounterKey.ElementKey(e.Key, e.KeyEnd)));
    }
}
