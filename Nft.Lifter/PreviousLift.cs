using System.Collections.Immutable;
using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using SourceRule = Nft.Bytecode.Objects.Rule;

namespace Nft.Lifter;

/// <summary>
/// The last lift with the sources it came from, so that a commit that appends rules to a base chain of thousands
/// lifts, lists and counts the appended rules alone instead of looking every rule up, listing it and collecting its
/// counter again. The engine hands out a committed rule as the same immutable object while it stays in its chain,
/// so when every chain now starts, rule object by rule object, with the rules it had, and nothing else the lift
/// reads changed (tables, chains, sets with their elements, objects and flowtables equal, no slot freed since), the
/// last result still holds for those rules; only the rules after them are lifted and put after their chain's rules.
/// That is what the whole lift gives when each appended rule reads nothing from its table (the rules
/// <see cref="RuleLiftCache"/> keeps: no set, object, jump, ct or mark) and its chain is a base chain that lifted
/// with rules before: the chain reaches the same chains and sets, the other chains lift alike, the appended rules'
/// counters take their slots in the order the whole lift asks for them, and their keys go where its collection puts
/// them (after the keys of the rules up to their chain's). Anything else (an insert,
/// delete or replace, a chain new or changed, a set or object changed, an appended rule that reads its table or
/// does not lift, a slot freed) is lifted whole. Not thread-safe: the daemon lifts under its lock.
/// </summary>
internal sealed class PreviousLift
{
    /// <summary>A chain's rules in the listing: they start at <see cref="Start"/>.</summary>
    sealed record Block(ChainId Chain, int Start, int Count);

    LiftResult? _result;
    CounterSlots? _slots;
    (long, long, long) _versions;
    /// <summary>The tables lifted, and a copy of each chain's rules (the caller's lists are not ours to trust not to change).</summary>
    SourceTable[] _tables = [];
    SourceRule[][][] _rules = [];
    /// <summary>The index in <see cref="LiftResult.Chains"/> of each base chain that lifted.</summary>
    Dictionary<ChainId, int> _lifted = [];
    List<Block> _blocks = [];
    Dictionary<ChainId, int> _blockOf = [];
    /// <summary>
    /// For each block, how many keys the counters hold once the rules up to its end are collected (the whole lift collects
    /// the listing's keys in its order, then those of object maps and set elements): where a block's new keys go.
    /// </summary>
    int[] _counterEnd = [];

    /// <summary>Rules the last <see cref="Extend"/> took from the previous lift and appended rules it lifted.</summary>
    public int Reused { get; private set; }
    public int Appended { get; private set; }

    static (long, long, long) Versions(CounterSlots s) => (s.Version, s.Quotas.Version, s.Limits.Version);

    /// <summary>Keeps a whole lift of <paramref name="tables"/>.</summary>
    public void Remember(IReadOnlyList<SourceTable> tables, LiftResult result, CounterSlots slots)
    {
        _result = result;
        _slots = slots;
        _versions = Versions(slots);
        _tables = [.. tables];
        _rules = new SourceRule[tables.Count][][];
        for (int t = 0; t < tables.Count; t++)
        {
            var chains = tables[t].Chains;
            _rules[t] = new SourceRule[chains.Count][];
            for (int c = 0; c < chains.Count; c++) _rules[t][c] = [.. chains[c].Rules];
        }
        _lifted = [];
        for (int i = 0; i < result.Chains.Count; i++)
            if (result.Chains[i] is ChainLift.Lifted { BaseChains.Count: > 0 } l) _lifted[l.Chain] = i;
        // the listing is in ruleset order: each chain's rules in one run
        _blocks = [];
        var listing = result.Listing;
        for (int i = 0; i < listing.Count;)
        {
            var r = listing[i];
            int j = i + 1;
            while (j < listing.Count && listing[j].Family == r.Family && listing[j].Table == r.Table && listing[j].Chain == r.Chain) j++;
            _blocks.Add(new Block(new ChainId(r.Family, r.Table, r.Chain), i, j - i));
            i = j;
        }
        IndexBlocks();
        // the keys as the whole lift collected them (LiftAccumulator.Build): each the first time a rule names it
        _counterEnd = new int[_blocks.Count];
        var seen = new HashSet<CounterKey>();
        for (int b = 0; b < _blocks.Count; b++)
        {
            for (int i = _blocks[b].Start; i < _blocks[b].Start + _blocks[b].Count; i++)
            {
                foreach (var k in Accumulator.CounterKeys(listing[i]))
                    if (slots.TryGet(k, out _)) seen.Add(k);
            }
            _counterEnd[b] = seen.Count;
        }
        if (seen.Count > result.Counters.Count) _result = null; // not the collection this mirrors: never extended
    }

    void IndexBlocks()
    {
        _blockOf = new Dictionary<ChainId, int>(_blocks.Count);
        for (int i = 0; i < _blocks.Count; i++)
            if (!_blockOf.TryAdd(_blocks[i].Chain, i)) _blockOf[_blocks[i].Chain] = int.MaxValue; // a chain in two runs: not extended
    }

    /// <summary>One chain that grew: where its rules are in the source and the last result.</summary>
    sealed record Growth(int Table, int Chain, ChainId Id, int Lifted, int Block);

    /// <summary>
    /// The last lift extended by the rules appended to its base chains since, when nothing else changed; null
    /// when the whole lift must run (see the class summary).
    /// </summary>
    public LiftResult? Extend(IReadOnlyList<SourceTable> tables, CounterSlots slots, RuleLiftCache cache)
    {
        if (_result is not { } last || !ReferenceEquals(slots, _slots) || Versions(slots) != _versions || tables.Count != _tables.Length) return null;
        var grown = new List<Growth>();
        int reused = 0;
        for (int t = 0; t < tables.Count; t++)
        {
            var now = tables[t];
            var was = _tables[t];
            if (!ReferenceEquals(now, was) && !(Equal(was.Table, now.Table) && SameList(was.Flowtables, now.Flowtables)
                && SameList(was.Objects, now.Objects) && SameSets(was.Sets, now.Sets))) return null;
            if (now.Chains.Count != was.Chains.Count) return null;
            for (int c = 0; c < now.Chains.Count; c++)
            {
                var chain = now.Chains[c];
                if (!Equal(was.Chains[c].Chain, chain.Chain)) return null;
                var old = _rules[t][c];
                if (!ReferencePrefix.StartsWith(chain.Rules, old)) return null;
                reused += old.Length;
                if (chain.Rules.Count == old.Length) continue;
                var id = new ChainId(now.Family, now.Name, chain.Name);
                // a base chain that lifted, with rules listed in one run of their own
                if (!chain.IsBase || !_lifted.TryGetValue(id, out var lifted) || !_blockOf.TryGetValue(id, out var block)
                    || block == int.MaxValue || _blocks[block].Count != old.Length) return null;
                // its IR base chains (one per device) share one list of its rules
                var bases = ((ChainLift.Lifted)last.Chains[lifted]).BaseChains;
                if (bases[0].Rules.Count != old.Length || bases.Any(b => b.Rules.Items != bases[0].Rules.Items)) return null;
                for (int i = old.Length; i < chain.Rules.Count; i++)
                    if (chain.Rules[i] is not { Handle: not null, Expressions: { } exprs } || !exprs.All(RuleLiftCache.ReadsNoTable)) return null;
                grown.Add(new Growth(t, c, id, lifted, block));
            }
        }
        // in listing order, as the whole lift lifts and lists them
        for (int i = 1; i < grown.Count; i++)
            if (grown[i].Block <= grown[i - 1].Block) return null;
        Reused = reused;
        Appended = 0;
        if (grown.Count == 0) return last;

        // lifted in the order the whole lift lifts them, so new counter keys take the slots it would give them
        var appended = new List<(Growth Growth, List<RuleListing> Entries, ValueList<Rule> Rules)>();
        foreach (var g in grown)
        {
            var source = tables[g.Table];
            var chain = source.Chains[g.Chain];
            var ctx = new TableContext(source, slots);
            var was = (ChainLift.Lifted)last.Chains[g.Lifted];
            var rules = was.BaseChains[0].Rules;
            var builder = ImmutableArray.CreateBuilder<Rule>(chain.Rules.Count);
            builder.AddRange(rules.Items);
            var entries = new List<RuleListing>(chain.Rules.Count - rules.Count);
            try
            {
                bool link = HookMapper.Map(ctx, chain.Chain).LinkLayer;
                for (int i = _rules[g.Table][g.Chain].Length; i < chain.Rules.Count; i++)
                {
                    var r = chain.Rules[i];
                    var lifted = RuleLifter.Lift(ctx, chain.Name, link, r);
                    cache.Add(ctx, chain.Name, link, r, lifted);
                    builder.Add(lifted);
                    entries.Add(new RuleListing(ctx.Family, ctx.Name, chain.Name, r.Handle ?? 0, r.Expressions ?? [], lifted));
                }
            }
            catch (LiftException)
            {
                return null;
            }
            // a rule that reads nothing from its table notes nothing to it; checked all the same
            if (ctx.Reached.Count > 0 || ctx.Uses.Count > 0 || ctx.FirstCt != null || ctx.FirstMarkSet != null) return null;
            appended.Add((g, entries, builder.ToImmutable()));
        }

        // the listing with each chain's new rules after its rules, the blocks after them moved on
        var listing = new List<RuleListing>(last.Listing.Count + appended.Sum(a => a.Entries.Count));
        var blocks = new List<Block>(_blocks.Count);
        int from = 0, shift = 0, next = 0;
        for (int b = 0; b < _blocks.Count; b++)
        {
            var block = _blocks[b];
            int count = block.Count;
            if (next < appended.Count && appended[next].Growth.Block == b)
            {
                for (int end = block.Start + block.Count; from < end; from++) listing.Add(last.Listing[from]);
                listing.AddRange(appended[next].Entries);
                count += appended[next].Entries.Count;
                next++;
            }
            blocks.Add(block with { Start = block.Start + shift, Count = count });
            shift += count - block.Count;
        }
        for (; from < last.Listing.Count; from++) listing.Add(last.Listing[from]);
        if (next != appended.Count) return null;

        // the counters as the whole lift collects them: each chain's new keys after the keys of the rules up to its own
        var added = new List<(int At, List<(CounterKey Key, ulong Slot)> Keys)>();
        foreach (var (g, entries, _) in appended)
        {
            var keys = new List<(CounterKey, ulong)>();
            foreach (var r in entries)
                foreach (var (_, key) in CounterKey.OfRule(r.Family, r.Table, r.Chain, r.Handle, r.Source))
                    if (slots.TryGet(key, out var slot))
                    {
                        if (last.Counters.ContainsKey(key)) return null;
                        keys.Add((key, slot));
                    }
            added.Add((_counterEnd[g.Block], keys));
        }
        Dictionary<CounterKey, ulong> counters;
        if (added.All(a => a.Keys.Count == 0 || a.At == last.Counters.Count))
        {
            // at the end (the common case: the chain appended to is the last with counters): copied without hashing a key
            counters = last.Counters is Dictionary<CounterKey, ulong> d ? new(d) : new(last.Counters);
            foreach (var (_, keys) in added)
                foreach (var (k, v) in keys) counters.Add(k, v);
        }
        else
        {
            counters = new Dictionary<CounterKey, ulong>(last.Counters.Count + added.Sum(a => a.Keys.Count));
            int at = 0, a = 0;
            foreach (var kv in last.Counters)
            {
                for (; a < added.Count && added[a].At == at; a++)
                    foreach (var (k, v) in added[a].Keys) counters.Add(k, v);
                counters.Add(kv.Key, kv.Value);
                at++;
            }
            for (; a < added.Count; a++)
                foreach (var (k, v) in added[a].Keys) counters.Add(k, v);
        }
        var counterEnd = (int[])_counterEnd.Clone();
        for (int a = 0, more = 0, b = 0; b < counterEnd.Length; b++)
        {
            for (; a < appended.Count && appended[a].Growth.Block <= b; a++) more += added[a].Keys.Count;
            counterEnd[b] += more;
        }

        var chainLifts = last.Chains.ToList();
        var baseChains = last.Ruleset.BaseChains.Items.ToBuilder();
        foreach (var (g, entries, rules) in appended)
        {
            var was = (ChainLift.Lifted)chainLifts[g.Lifted];
            var now = new List<BaseChain>(was.BaseChains.Count);
            foreach (var b in was.BaseChains)
            {
                var nb = b with { Rules = rules };
                int at = IndexOf(baseChains, b);
                if (at < 0) return null;
                baseChains[at] = nb;
                now.Add(nb);
            }
            // the chain's own rules first, then those of the chains it reaches
            int own = _rules[g.Table][g.Chain].Length;
            var chainListing = new List<RuleListing>(was.Listing.Count + entries.Count);
            for (int i = 0; i < own; i++) chainListing.Add(was.Listing[i]);
            chainListing.AddRange(entries);
            for (int i = own; i < was.Listing.Count; i++) chainListing.Add(was.Listing[i]);
            chainLifts[g.Lifted] = was with { BaseChains = now, Listing = chainListing };
        }

        var result = last with
        {
            Ruleset = last.Ruleset with { BaseChains = baseChains.ToImmutable() },
            Counters = counters,
            Listing = listing,
            Chains = chainLifts,
        };
        // what the next commit compares with
        _result = result;
        _tables = [.. tables];
        foreach (var (g, entries, _) in appended) _rules[g.Table][g.Chain] = [.. tables[g.Table].Chains[g.Chain].Rules];
        _blocks = blocks;
        _counterEnd = counterEnd;
        Appended = appended.Sum(a => a.Entries.Count);
        return result;
    }

    static int IndexOf(ImmutableArray<BaseChain>.Builder list, BaseChain b)
    {
        for (int i = 0; i < list.Count; i++)
            if (ReferenceEquals(list[i], b)) return i;
        return -1;
    }

    static bool Equal<T>(T? a, T? b) where T : class => ReferenceEquals(a, b) || (a != null && a.Equals(b));

    static bool SameList<T>(IReadOnlyList<T>? a, IReadOnlyList<T>? b) where T : class
    {
        if (ReferenceEquals(a, b)) return true;
        if ((a?.Count ?? 0) != (b?.Count ?? 0)) return false;
        for (int i = 0; i < (a?.Count ?? 0); i++)
            if (!Equal(a![i], b![i])) return false;
        return true;
    }

    static bool SameSets(IReadOnlyList<Nft.Bytecode.Objects.SourceSet> a, IReadOnlyList<Nft.Bytecode.Objects.SourceSet> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++)
            if (!ReferenceEquals(a[i], b[i]) && !(Equal(a[i].Set, b[i].Set) && SameList(a[i].Elements, b[i].Elements))) return false;
        return true;
    }
}
