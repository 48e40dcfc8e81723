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
        var chains = t.Chains.Select(c => new SourceChain(c.Chain with { Family = t.Family, Table = t.Name },
            c.Rules.Select(r => Rule(r, t.Family, t.Name, c.Name)).ToList())).ToList();
        var sets = t.Sets.Select(s => new SourceSet(s.Set with { Family = t.Family, Table = t.Name }, Elements(s.Elements))).ToList();
        var objects = t.Objects.Select(o => o.Object with { Family = t.Family, Table = t.Name }).ToList();
        return new SourceTable(t.Table, chains, sets, objects);
    }

    /// <summary>
    /// Each committed rule's view, made once and handed out again while the rule stays in the same chain: a
    /// record and its rule are immutable, so the view is the same for as long as the names are, and a commit of
    /// one more rule among thousands copies one rule, not every rule of the chain (the lift keys its cache by
    /// the expressions, which the view shares with the record either way).
    /// </summary>
    static readonly ConditionalWeakTable<RuleRecord, Rule> Views = new();

    static Rule Rule(RuleRecord r, byte family, string table, string chain)
    {
        if (Views.TryGetValue(r, out var v) && v.Family == family && v.Table == table && v.Chain == chain) return v;
        v = r.Rule with { Family = family, Table = table, Chain = chain };
        Views.AddOrUpdate(r, v);
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
