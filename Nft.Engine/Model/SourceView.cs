using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// The ruleset as the typed Nft.Bytecode tree the backend lifts (<see cref="SourceTable"/>): built
/// from the records the engine holds, without decoding anything: the engine's own typed objects in
/// their dump form with their table filled in (set names resolved, transaction ids dropped); elements
/// carry their effective timeout and their expiry deadline on the daemon's clock.
/// </summary>
internal static class SourceView
{
    public static List<SourceTable> Of(RulesetSnapshot snapshot) => snapshot.Tables.Select(Table).ToList();

    static SourceTable Table(TableRecord t)
    {
        var chains = t.Chains.Select(c => Chain(c, t.Family, t.Name)).ToList();
        var sets = t.Sets.Select(s => new SourceSet(s.Set with { Family = t.Family, Table = t.Name }, Elements(s.Elements))).ToList();
        var objects = t.Objects.Select(o => o.Object with { Family = t.Family, Table = t.Name }).ToList();
        return new SourceTable(t.Table, chains, sets, objects);
    }

    /// <summary>
    /// Each chain record's view, made once and handed out again while the record is committed under the same table: a
    /// commit that leaves a chain alone keeps its record, so its view is not made again.
    /// </summary>
    static readonly ConditionalWeakTable<ChainRecord, ChainView> ChainViews = new();

    sealed record ChainView(SourceChain Chain, Rule[] Rules);

    /// <summary>
    /// Records made by <see cref="Append"/>, each with the record its appends started from: that record's rules and then
    /// the appended ones are its rules. Walking an immutable list of 10,000 rules took milliseconds per commit (its
    /// enumerator, one tree node after the other); an appended chain's view is the view of that record and the appended
    /// rules. Only that record is kept alive by the link (not one record per append of a batch of thousands), and the
    /// link is dropped once the view is made.
    /// </summary>
    static readonly ConditionalWeakTable<ChainRecord, ChainRecord> Appends = new();

    /// <summary>Appends beyond which the view is made by walking the whole list (each appended rule is an indexed lookup).</summary>
    const int LookupsAtMost = 64;

    /// <summary>
    /// <paramref name="chain"/> with <paramref name="rule"/> appended at its end, linked for its view while the link
    /// can serve it: to a record whose view is made, at most <see cref="LookupsAtMost"/> appends back. A batch of
    /// 100,000 appends to a new chain links none: each link was a dependent handle that every garbage collection of
    /// the batch scanned, and one more for every rule (the collections' cost grew with the square of the batch).
    /// </summary>
    public static ChainRecord Append(ChainRecord chain, RuleRecord rule) => Append(chain, chain.Rules.Add(rule));

    /// <summary>
    /// <paramref name="chain"/> with rules appended in one step: <paramref name="rules"/> is its rules followed by the
    /// appended ones. The record is linked as the last of as many single appends would be.
    /// </summary>
    public static ChainRecord Append(ChainRecord chain, ImmutableList<RuleRecord> rules)
    {
        var next = chain with { Rules = rules };
        var from = Appends.TryGetValue(chain, out var linked) ? linked : ChainViews.TryGetValue(chain, out _) ? chain : null;
        if (from != null && next.Rules.Count - from.Rules.Count <= LookupsAtMost) Appends.AddOrUpdate(next, from);
        return next;
    }

    static ChainView? Made(ChainRecord c, byte family, string table) =>
        ChainViews.TryGetValue(c, out var v) && v.Chain.Chain.Family == family && v.Chain.Chain.Table == table ? v : null;

    static SourceChain Chain(ChainRecord c, byte family, string table)
    {
        if (Made(c, family, table) is { } made) return made.Chain;
        Rule[] rules;
        if (Appends.TryGetValue(c, out var from) && c.Rules.Count - from.Rules.Count <= LookupsAtMost)
        {
            var before = Made(from, family, table)?.Rules ?? Rules(from, family, table);
            rules = new Rule[c.Rules.Count];
            before.CopyTo(rules, 0);
            for (int i = before.Length; i < rules.Length; i++) rules[i] = Rule(c.Rules[i], family, table, c.Name);
        }
        else rules = Rules(c, family, table);
        var view = new ChainView(new SourceChain(c.Chain with { Family = family, Table = table }, rules), rules);
        ChainViews.AddOrUpdate(c, view);
        Appends.Remove(c);
        return view.Chain;
    }

    /// <summary>The views of a record's rules in chain order, walking its list.</summary>
    static Rule[] Rules(ChainRecord c, byte family, string table)
    {
        var views = new Rule[c.Rules.Count];
        int i = 0;
        foreach (var r in c.Rules) views[i++] = Rule(r, family, table, c.Name);
        return views;
    }

    /// <summary>
    /// Each committed rule's view, made once and handed out again while the rule stays in the same chain: a
    /// record and its rule are immutable, so the view is the same for as long as the names are, and a commit of
    /// one more rule among thousands copies one rule, not every rule of the chain (the lift keys its cache by
    /// the expressions, which the view shares with the record either way). Kept in the record's forms.
    /// </summary>
    static Rule Rule(RuleRecord r, byte family, string table, string chain)
    {
        if (r.Forms.View is { View: var v } made && ReferenceEquals(made.Of, r.Rule) && v.Family == family && v.Table == table && v.Chain == chain)
            return v;
        v = r.Rule with { Family = family, Table = table, Chain = chain };
        r.Forms.View = new RuleView(r.Rule, v);
        return v;
    }

    /// <summary>The elements in one list of their count (a set can hold millions: no regrowing).</summary>
    static List<SetElement> Elements(ElementSet elements)
    {
        var list = new List<SetElement>(elements.Count);
        foreach (var e in elements) list.Add(Element(e));
        return list;
    }

    public static SetElement Element(ElementRecord e) =>
        e.Timeout == null && e.ExpiresAtMs == null
            ? e.Element
            : e.Element with { Timeout = e.Timeout, Expiration = e.ExpiresAtMs is long at ? (ulong)Math.Max(0, at) : null };
}
