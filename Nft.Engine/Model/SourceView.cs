using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// The ruleset as the typed Nft.Bytecode tree the backend lifts (<see cref="SourceTable"/>): built
/// from the records the engine holds, without decoding anything. Rules and elements are the
/// engine's own objects in their dump form (set names resolved, transaction ids dropped); elements
/// carry their effective timeout and their expiry deadline on the daemon's clock.
/// </summary>
internal static class SourceView
{
    public static List<SourceTable> Of(RulesetSnapshot snapshot) => snapshot.Tables.Select(Table).ToList();

    static SourceTable Table(TableRecord t)
    {
        var table = new Table { Family = t.Family, Name = t.Name, Flags = t.Flags, Handle = t.Handle };
        var chains = t.Chains.Select(c => new SourceChain(Chain(t, c), c.Rules.Select(r => Rule(t, c, r)).ToList())).ToList();
        var sets = t.Sets.Select(s => new SourceSet(Set(t, s), s.Elements.Select(Element).ToList())).ToList();
        return new SourceTable(table, chains, sets);
    }

    static Chain Chain(TableRecord t, ChainRecord c) => new()
    {
        Family = t.Family,
        Table = t.Name,
        Name = c.Name,
        Handle = c.Handle,
        Flags = c.Flags,
        Hook = c.Hook is { } h ? new ChainHook(h.HookNum, h.Priority, null, h.Devices.IsDefaultOrEmpty ? null : h.Devices) : null,
        Policy = c.Hook?.Policy,
        Type = c.Hook?.Type,
    };

    static Rule Rule(TableRecord t, ChainRecord c, RuleRecord r) => r.Rule with { Family = t.Family, Table = t.Name, Chain = c.Name };

    static Set Set(TableRecord t, SetRecord s) => new()
    {
        Family = t.Family,
        Table = t.Name,
        Name = s.Name,
        Handle = s.Handle,
        Flags = s.Flags,
        KeyType = s.KeyType,
        KeyLen = s.KeyLen,
        DataType = s.DataType,
        DataLen = s.DataLen,
        ObjType = s.ObjType,
        Policy = s.Policy,
        Timeout = s.Timeout,
        GcInterval = s.GcInterval,
        Expr = s.Expr,
        Expressions = s.Expressions,
    };

    public static SetElement Element(ElementRecord e) =>
        e.Timeout == null && e.ExpiresAtMs == null
            ? e.Element
            : e.Element with { Timeout = e.Timeout, Expiration = e.ExpiresAtMs is long at ? (ulong)Math.Max(0, at) : null };
}
