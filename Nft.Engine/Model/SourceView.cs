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
        var table = new Table { Family = t.Family, Name = t.Name, Flags = t.Flags, Handle = t.Handle, UserData = t.UserData };
        var chains = t.Chains.Select(c => new SourceChain(Chain(t, c), c.Rules.Select(r => Rule(t, c, r)).ToList())).ToList();
        var sets = t.Sets.Select(s => new SourceSet(Set(t, s), s.Elements.Select(Element).ToList())).ToList();
        return new SourceTable(table, chains, sets, t.Objects.Select(o => Object(t, o)).ToList());
    }

    /// <summary>A named object with the state nft gave it (a counter's cell holds what it counted in the emulation).</summary>
    static NftObject Object(TableRecord t, ObjectRecord o) => new()
    {
        Family = t.Family,
        Table = t.Name,
        Name = o.Name,
        Type = o.Type,
        Handle = o.Handle,
        Data = o.Data,
        UserData = o.UserData,
    };

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
        UserData = c.UserData,
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
        UserData = s.UserData,
        Desc = s.DescSize != null || s.ConcatFieldLens != null ? new SetDesc(s.DescSize, s.ConcatFieldLens) : null,
        Expr = s.Expr,
        Expressions = s.Expressions,
    };

    public static SetElement Element(ElementRecord e) =>
        e.Timeout == null && e.ExpiresAtMs == null
            ? e.Element
            : e.Element with { Timeout = e.Timeout, Expiration = e.ExpiresAtMs is long at ? (ulong)Math.Max(0, at) : null };
}
