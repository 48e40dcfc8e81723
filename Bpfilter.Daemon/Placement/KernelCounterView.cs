using System.Collections.Immutable;
using Nft.Engine;
using Nft.Kernel;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Counters of kernel-placed rules and objects as nft should see them: the kernel's count since the
/// rule was placed, less what GETRULE_RESET/GETOBJ_RESET took away, plus what BPF counted in a rule both sides
/// counted before BPF's base chain moved to the kernel (<see cref="Carry"/>). One dump of the kernel's counters
/// serves a whole request (<see cref="Invalidate"/> at the start of each). What the view keeps besides the kernel's
/// counts is one record per rule (<see cref="KernelRuleListing"/>) and one per object (<see cref="KernelObjectListing"/>, keyed
/// as nf_tables keys objects: by type too), so forgetting a rule or an object forgets all of it at once.
/// </summary>
internal sealed class KernelCounterView(KernelPlacement placement)
{
    readonly Dictionary<(byte, string, ulong), KernelRuleListing> _ruleListings = [];
    readonly Dictionary<KernelObjectKey, KernelObjectListing> _objectListings = [];
    Dictionary<(byte, string, ulong, int), CounterValue>? _rules;
    Dictionary<KernelObjectKey, CounterValue>? _objects;
    /// <summary>Counts requests: a rule the kernel reset in its own copy during this one carries its number (<see cref="RuleResetInKernel"/>).</summary>
    long _request;

    /// <summary>Where the quotas the kernel took over from BPF count from.</summary>
    public KernelQuotaStarts QuotaStarts { get; } = new();

    /// <summary>The reset baselines, for the state file.</summary>
    public (IReadOnlyCollection<((byte, string, ulong, int) Key, CounterValue Value)> Rules, IReadOnlyCollection<(KernelObjectKey Key, CounterValue Value)> Objects) Baselines =>
        (Flattened(l => l.Baselines), ObjectPart(l => l.Base));

    /// <summary>What the kernel's rules list besides their own count, for the state file.</summary>
    public IReadOnlyCollection<((byte, string, ulong, int) Key, CounterValue Value)> Carried => Flattened(l => l.Carried);

    List<((byte, string, ulong, int) Key, CounterValue Value)> Flattened(Func<KernelRuleListing, ImmutableDictionary<int, CounterValue>> part) =>
        [.. _ruleListings.SelectMany(r => part(r.Value).Select(c => ((r.Key.Item1, r.Key.Item2, r.Key.Item3, c.Key), c.Value)))];

    List<(KernelObjectKey Key, CounterValue Value)> ObjectPart(Func<KernelObjectListing, CounterValue?> part) =>
        [.. _objectListings.Where(o => part(o.Value) != null).Select(o => (o.Key, part(o.Value)!.Value))];

    KernelRuleListing Listing(byte family, string table, ulong handle) => _ruleListings.GetValueOrDefault((family, table, handle)) ?? KernelRuleListing.None;

    /// <summary>Keeps <paramref name="listing"/> for the rule, or nothing when it holds nothing.</summary>
    void Set(byte family, string table, ulong handle, KernelRuleListing listing)
    {
        if (listing.IsNone(_request)) _ruleListings.Remove((family, table, handle));
        else _ruleListings[(family, table, handle)] = listing;
    }

    /// <summary>What the kernel's named counters list besides their own count, for the state file.</summary>
    public IReadOnlyCollection<(KernelObjectKey Key, CounterValue Value)> ObjectsCarried => ObjectPart(l => l.Carried);

    KernelObjectListing ObjectListing(KernelObjectKey key) => _objectListings.GetValueOrDefault(key) ?? KernelObjectListing.None;

    /// <summary>Keeps <paramref name="listing"/> for the object, or nothing when it holds nothing.</summary>
    void Set(KernelObjectKey key, KernelObjectListing listing)
    {
        if (listing == KernelObjectListing.None) _objectListings.Remove(key);
        else _objectListings[key] = listing;
    }

    /// <summary>Has a kernel named counter list <paramref name="v"/> (what BPF counted for it after its count went to the kernel) besides its own.</summary>
    public void CarryObject(KernelObjectKey key, CounterValue v)
    {
        var l = ObjectListing(key);
        Set(key, l with { Carried = Plus(l.Carried ?? default, v) });
    }

    public void RestoreObjectCarried(KernelObjectKey key, CounterValue v) => Set(key, ObjectListing(key) with { Carried = v });

    /// <summary>
    /// Has a kernel rule list <paramref name="v"/> (BPF's part of a counter both sides counted) besides its own count:
    /// the kernel's rule is not made anew (its handle would change), so its count stays the kernel's part.
    /// </summary>
    public void Carry(byte family, string table, ulong handle, int index, CounterValue v)
    {
        var l = Listing(family, table, handle);
        Set(family, table, handle, l with { Carried = l.Carried.SetItem(index, Plus(l.Carried.GetValueOrDefault(index), v)) });
    }

    /// <summary>Restores reset baselines saved by an earlier run (the kernel's counters ran on meanwhile).</summary>
    public void RestoreRule(byte family, string table, ulong handle, int index, CounterValue v)
    {
        var l = Listing(family, table, handle);
        Set(family, table, handle, l with { Baselines = l.Baselines.SetItem(index, v) });
    }

    public void RestoreObject(KernelObjectKey key, CounterValue v) => Set(key, ObjectListing(key) with { Base = v });

    public void RestoreCarried(byte family, string table, ulong handle, int index, CounterValue v)
    {
        var l = Listing(family, table, handle);
        Set(family, table, handle, l with { Carried = l.Carried.SetItem(index, v) });
    }

    /// <summary>A request starts: the kernel's counters are read anew, and no rule was reset in the kernel during it yet.</summary>
    public void BeginRequest()
    {
        _request++;
        Invalidate();
    }

    /// <summary>Whether the kernel reset the rule in its own copy during this request.</summary>
    public bool ResetInKernel(byte family, string table, ulong handle) => Listing(family, table, handle).ResetInRequest == _request;

    /// <summary>
    /// The kernel reset the rule in its own copy (GETRULE_RESET, for its quotas): its counters count from nothing there, so
    /// their baselines go, and the same reset's counters take none; BPF's part listed besides goes too: the reset lists
    /// the rule from nothing.
    /// </summary>
    public void RuleResetInKernel(byte family, string table, ulong handle)
    {
        Set(family, table, handle, KernelRuleListing.None with { ResetInRequest = _request });
        Invalidate();
    }

    public void Invalidate()
    {
        _rules = null;
        _objects = null;
    }

    public CounterValue? Rule(byte family, string table, ulong handle, int index) =>
        Snapshot().Rules.TryGetValue((family, table, handle, index), out var v) ? Listed(family, table, handle, index, v) : null;

    public CounterValue? Object(KernelObjectKey key) => Snapshot().Objects.TryGetValue(key, out var v) ? Listed(key, v) : null;

    /// <summary>
    /// The listing of counter <paramref name="c"/> from the kernel's final count of it in <paramref name="deleted"/>
    /// (<see cref="KernelPlacement.Deleted"/>) in place of the kernel's current one; null when that does not hold it.
    /// </summary>
    public CounterValue? Final(KernelCounters deleted, CounterRef c)
    {
        if (c.ObjectName == null)
            return deleted.Rule(c.Family, c.Table, c.RuleHandle, c.ExpressionIndex) is { } r
                ? Listed(c.Family, c.Table, c.RuleHandle, c.ExpressionIndex, new CounterValue(r.Packets, r.Bytes)) : null;
        var key = KernelObjectKey.Of(c);
        return deleted.Object(key.Family, key.Table, (uint)key.Type, key.Name) is { } o && Count(o) is { } v ? Listed(key, v) : null;
    }

    /// <summary>The kernel's count <paramref name="v"/> of a rule's counter as listed: less its reset baseline, plus what is carried besides.</summary>
    CounterValue Listed(byte family, string table, ulong handle, int index, CounterValue v)
    {
        var l = Listing(family, table, handle);
        return Plus(v.Since(l.Baselines.GetValueOrDefault(index)), l.Carried.GetValueOrDefault(index));
    }

    CounterValue Listed(KernelObjectKey key, CounterValue v)
    {
        var l = ObjectListing(key);
        return Plus(v.Since(l.Base ?? default), l.Carried ?? default);
    }

    /// <summary>A named counter's packets and bytes, a named quota's bytes consumed since it was placed.</summary>
    static CounterValue? Count(ObjectState o) =>
        o.Packets is { } p ? new CounterValue(p, o.Bytes ?? 0) : o.QuotaConsumedSincePlaced is { } q ? new CounterValue(0, q) : null;

    public void ResetRule(byte family, string table, ulong handle, int index)
    {
        var l = Listing(family, table, handle);
        l = l with { Carried = l.Carried.Remove(index) };
        if (l.ResetInRequest != _request && Snapshot().Rules.TryGetValue((family, table, handle, index), out var v))
            l = l with { Baselines = l.Baselines.SetItem(index, v) };
        Set(family, table, handle, l);
    }

    public void ResetObject(KernelObjectKey key) =>
        Set(key, KernelObjectListing.None with { Base = Snapshot().Objects.TryGetValue(key, out var v) ? v : ObjectListing(key).Base });

    /// <summary>An object reset in the kernel's own copy (a quota): the kernel's count is the listing's again.</summary>
    public void ForgetObjectBaseline(KernelObjectKey key)
    {
        _objectListings.Remove(key);
        Invalidate();
    }

    /// <summary>
    /// Forgets the reset baselines and quota start points of what a transaction renewed (<see cref="KernelRenewal"/>): the
    /// kernel's new rules and objects, by the same handles and names, count from what the transaction gave them.
    /// </summary>
    public void Forget(KernelRenewal renewed)
    {
        QuotaStarts.Forget(renewed);
        bool Table(byte family, string table) => renewed.Tables.Contains(new TableKey(family, table));
        Keep(_ruleListings, k => !Table(k.Item1, k.Item2));
        Keep(_objectListings, k => !Table(k.Family, k.Table) && !renewed.Objects.Contains((new TableKey(k.Family, k.Table), (uint)k.Type, k.Name)));
    }

    /// <summary>Forgets reset baselines of rules and objects the kernel no longer holds.</summary>
    public void Retain(IReadOnlyList<Nft.Bytecode.Objects.SourceTable> placed)
    {
        var rules = placed.SelectMany(t => t.Chains.SelectMany(c => c.Rules).Select(r => (t.Family, t.Name, r.Handle ?? 0))).ToHashSet();
        Keep(_ruleListings, rules.Contains);
        var objects = KernelObjectKey.HeldBy(placed);
        Keep(_objectListings, objects.Contains);
        Invalidate();
    }

    /// <summary>Removes the entries of <paramref name="entries"/> whose key <paramref name="keep"/> does not keep.</summary>
    static void Keep<TKey, TValue>(Dictionary<TKey, TValue> entries, Func<TKey, bool> keep) where TKey : notnull
    {
        foreach (var k in entries.Keys.Where(k => !keep(k)).ToList()) entries.Remove(k);
    }

    static CounterValue Plus(CounterValue v, CounterValue b) => new(v.Packets + b.Packets, v.Bytes + b.Bytes);

    (Dictionary<(byte, string, ulong, int), CounterValue> Rules, Dictionary<KernelObjectKey, CounterValue> Objects) Snapshot()
    {
        if (_rules != null && _objects != null) return (_rules, _objects);
        var c = placement.ReadCounters();
        _rules = [];
        foreach (var r in c.Rules) _rules[(r.Family, r.Table, r.RuleHandle, r.ExpressionIndex)] = new CounterValue(r.Packets, r.Bytes);
        _objects = [];
        foreach (var o in c.Objects)
        {
            if (Count(o) is { } v) _objects[new KernelObjectKey(o.Family, o.Table, (Nft.Bytecode.NftObjectType)o.Type, o.Name)] = v;
        }
        return (_rules, _objects);
    }
}

/// <summary>
/// What the listing of one kernel-placed rule's counters takes from and adds to the kernel's counts, by expression index:
/// the reset baselines (the kernel's count when nft reset it), BPF's part of counters both sides counted
/// (<see cref="KernelCounterView.Carry"/>), and the request during which the kernel reset the rule in its own copy.
/// </summary>
internal sealed record KernelRuleListing(ImmutableDictionary<int, CounterValue> Baselines, ImmutableDictionary<int, CounterValue> Carried, long ResetInRequest)
{
    public static readonly KernelRuleListing None = new(ImmutableDictionary<int, CounterValue>.Empty, ImmutableDictionary<int, CounterValue>.Empty, -1);

    /// <summary>Whether it changes nothing in request <paramref name="request"/>: the view need not keep it.</summary>
    public bool IsNone(long request) => Baselines.IsEmpty && Carried.IsEmpty && ResetInRequest != request;
}

/// <summary>
/// What the listing of one kernel-placed named object's count takes from and adds to the kernel's: the reset baseline (the
/// kernel's count when nft reset it) and BPF's part counted after its count went to the kernel (<see cref="KernelCounterView.CarryObject"/>).
/// </summary>
internal sealed record KernelObjectListing(CounterValue? Base, CounterValue? Carried)
{
    public static readonly KernelObjectListing None = new(null, null);
}
