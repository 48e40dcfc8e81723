using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>
/// Joins per-chain results into one <see cref="LiftResult"/>: a regular chain reached from several
/// base chains is lifted alike each time and kept once; a set read by several chains must be read
/// with one layout (the later reader is refused otherwise, as a single table-wide lift refused it).
/// </summary>
internal sealed class Accumulator
{
    readonly List<ChainLift> _results = [];
    readonly List<((int, int, int, int, int) At, LiftRefusal Refusal)> _refusals = [];
    readonly Dictionary<string, (BaseChain Chain, (int, int) At)> _base = new(StringComparer.Ordinal);
    readonly Dictionary<string, (Chain Chain, (int, int) At)> _chains = new(StringComparer.Ordinal);
    readonly Dictionary<string, (Set Set, string Signature, (int, int, int, int) At)> _sets = new(StringComparer.Ordinal);
    readonly Dictionary<(byte, string, string), SetEncoder> _encoders = new();
    readonly Dictionary<(byte, string, string), string> _setNames = new();
    readonly Dictionary<(int, int, int), RuleListing> _listing = new();
    readonly Dictionary<string, ChainId> _origins = new(StringComparer.Ordinal);
    int _baseSeq;

    public void Refuse(Order order, LiftRefusal r) => _refusals.Add((order.Of(r), r));

    public void Add(Order order, ChainLift lift, TableContext? ctx = null)
    {
        if (lift is ChainLift.Lifted l && ctx != null && Conflict(order, l, ctx) is { } refusal)
            lift = new ChainLift.Refused(l.Chain, refusal);
        _results.Add(lift);
        if (lift is ChainLift.Refused r)
        {
            Refuse(order, r.Refusal);
            return;
        }
        var lifted = (ChainLift.Lifted)lift;
        var t = order.Table;
        foreach (var b in lifted.BaseChains)
        {
            _base[b.Name] = (b, (order.Index, _baseSeq++));
            _origins[b.Name] = lifted.Chain;
        }
        foreach (var c in lifted.Reached)
        {
            var name = c.Name[(ctx!.ChainName("").Length)..];
            _chains.TryAdd(c.Name, (c, (order.Index, order.Chain(name))));
            _origins[c.Name] = new ChainId(t.Family, t.Name, name);
        }
        foreach (var s in lifted.Sets)
        {
            var use = ctx!.Uses.Values.First(u => ctx.SetName(u.Set.Name) == s.Name);
            if (_sets.TryGetValue(s.Name, out var had))
            {
                _sets[s.Name] = had with { Set = WithRuleLists(had.Set, s) };
                continue;
            }
            _sets[s.Name] = (s, use.Signature, (order.Index, order.Chain(use.Chain), order.Rule(use.Chain, use.Handle), use.Index));
            _encoders[(t.Family, t.Name, use.Set.Name)] = new SetEncoder(ctx, use);
            _setNames[(t.Family, t.Name, use.Set.Name)] = s.Name;
        }
        foreach (var r2 in lifted.Listing) _listing.TryAdd(order.Of(r2.Chain, r2.Handle), r2);
    }

    /// <summary>
    /// <paramref name="had"/> also holding the lists the rules of a later chain give the elements they make in it (each
    /// element keeps its maker's list, whichever base chain ran the rule); unchanged when they give none it lacks.
    /// </summary>
    static Set WithRuleLists(Set had, Set later)
    {
        if (!had.PacketWritten || !later.PacketWritten || later.RuleLists.All(had.RuleLists.Contains)) return had;
        var lists = had.RuleLists.Concat(later.RuleLists.Where(l => !had.RuleLists.Contains(l))).ToValueList();
        return had with { PacketStatements = lists[0], RuleStatementLists = lists.Count > 1 ? lists : default };
    }

    /// <summary>A set this chain reads with another layout than a chain lifted before it.</summary>
    LiftRefusal? Conflict(Order order, ChainLift.Lifted l, TableContext ctx)
    {
        foreach (var use in ctx.Uses.Values)
            if (_sets.TryGetValue(ctx.SetName(use.Set.Name), out var seen) && seen.Signature != use.Signature)
                return new LiftRefusal(ctx.Family, ctx.Name, use.Chain, use.Handle, use.Index,
                    $"set '{use.Set.Name}' is used with keys of different layouts ('{seen.Set.Key}' and '{use.Key}')");
        return null;
    }

    /// <summary>
    /// The rule listings in ruleset order. Chains are added in ruleset order with their rules in order, so the
    /// listing usually is already: checked in one pass, sorted only when it is not.
    /// </summary>
    List<RuleListing> Listing()
    {
        var listing = new List<RuleListing>(_listing.Count);
        (int, int, int)? last = null;
        bool sorted = true;
        foreach (var (at, r) in _listing)
        {
            if (last is { } l && l.CompareTo(at) > 0) sorted = false;
            last = at;
            listing.Add(r);
        }
        return sorted ? listing : _listing.OrderBy(kv => kv.Key).Select(kv => kv.Value).ToList();
    }

    /// <summary>The counter keys a rule names, in its order: its own counters (<see cref="CounterKey.OfRule"/>) and the named counters it refers to.</summary>
    internal static IEnumerable<CounterKey> CounterKeys(RuleListing r)
    {
        using var own = CounterKey.OfRule(r.Family, r.Table, r.Chain, r.Handle, r.Source).GetEnumerator();
        bool more = own.MoveNext();
        for (int i = 0; i < r.Source.Count; i++)
            if (more && own.Current.Index == i)
            {
                yield return own.Current.Key;
                more = own.MoveNext();
            }
            else if (r.Source[i] is ObjRefExpr { IsMap: false, ImmType: (uint)NftObjectType.Counter, ImmName: { } n }) yield return CounterKey.Named(r.Family, r.Table, n);
    }

    public LiftResult Build(CounterSlots slots)
    {
        var baseChains = _base.Values.OrderBy(b => b.At).Select(b => b.Chain).ToValueList();
        var chains = _chains.Values.OrderBy(c => c.At).Select(c => c.Chain).ToValueList();
        var sets = _sets.Values.OrderBy(s => s.At).Select(s => s.Set).ToValueList();
        var listing = Listing();
        // the counter slots the lifted rules use: each rule's own counter, and the named counters they name
        var counters = new Dictionary<CounterKey, ulong>();
        foreach (var r in listing)
            foreach (var k in CounterKeys(r))
                if (slots.TryGet(k, out var id)) counters[k] = id;
        // the quota and limit states the lifted rules use: anonymous ones by expression, named ones by object
        var quotas = new Dictionary<StatefulKey, ulong>();
        var limits = new Dictionary<StatefulKey, ulong>();
        foreach (var r in listing)
            for (int i = 0; i < r.Source.Count; i++)
            {
                var (key, table) = r.Source[i] switch
                {
                    QuotaExpr => (new StatefulKey(r.Family, r.Table, r.Chain, r.Handle, i, null), (slots.Quotas, quotas)),
                    LimitExpr => (new StatefulKey(r.Family, r.Table, r.Chain, r.Handle, i, null), (slots.Limits, limits)),
                    ObjRefExpr { IsMap: false, ImmType: (uint)NftObjectType.Quota, ImmName: { } n } => (StatefulKey.Named(r.Family, r.Table, n), (slots.Quotas, quotas)),
                    ObjRefExpr { IsMap: false, ImmType: (uint)NftObjectType.Limit, ImmName: { } n } => (StatefulKey.Named(r.Family, r.Table, n), (slots.Limits, limits)),
                    _ => ((StatefulKey?)null, ((SlotTable<StatefulKey>, Dictionary<StatefulKey, ulong>)?)null),
                };
                if (key is { } k && table is var (from, to) && from.TryGet(k, out var slot)) to[k] = slot;
            }
        // the objects an object map may name (every object of its type in the table): their slots, by key (the slot
        // tables keep the inverse: inverting them here cost every commit the size of the ruleset)
        void Named(Statement st)
        {
            switch (st)
            {
                case CounterStatement c when slots.TryGetKey(c.Id, out var k): counters[k] = c.Id; break;
                case QuotaStatement q when slots.Quotas.TryGetKey(q.StateSlot, out var k): quotas[k] = q.StateSlot; break;
                case LimitStatement l when slots.Limits.TryGetKey(l.StateSlot, out var k): limits[k] = l.StateSlot; break;
            }
        }
        foreach (var r in listing)
            foreach (var st in r.Lifted.Statements)
                if (st is ObjectMapStatement m)
                    foreach (var o in m.Objects) Named(o);
        // the statements of set elements (an object map's statements are its objects', gathered above)
        foreach (var set in sets)
            if (set.Data is not SetData.Object)
                foreach (var e in set.Elements)
                    foreach (var st in e.Statements) Named(st);
        var refusals = _refusals.OrderBy(r => r.At).Select(r => r.Refusal).ToList();
        return new LiftResult(new Ruleset(baseChains, chains, sets), counters, _setNames, listing)
        {
            Chains = _results,
            Refusals = refusals,
            Origins = _origins,
            SetEncoders = _encoders,
            Quotas = quotas,
            Limits = limits,
        };
    }
}
