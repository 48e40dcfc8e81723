using Nft.Engine.Model;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Netlink;
using NftChain = Nft.Bytecode.Objects.Chain;
using NftChainHook = Nft.Bytecode.Objects.ChainHook;
using NftRule = Nft.Bytecode.Objects.Rule;
using NftSet = Nft.Bytecode.Objects.Set;
using NftSetElement = Nft.Bytecode.Objects.SetElement;
using NftTable = Nft.Bytecode.Objects.Table;

namespace Nft.Engine;

/// <summary>
/// The emulation's committed records as the typed Nft.Bytecode objects the lifter reads. Expression
/// data is decoded with the same codec that decoded the request, so the lifter sees what nft sent.
/// </summary>
internal static class SnapshotSource
{
    public static List<SourceTable> From(RulesetSnapshot snapshot) => snapshot.Tables.Select(Table).ToList();

    static SourceTable Table(TableRecord t)
    {
        var table = new NftTable { Family = t.Family, Name = t.Name, Flags = t.Flags, Handle = t.Handle };
        var chains = t.Chains.Select(c => new SourceChain(Chain(t, c), c.Rules.Select(r => Rule(t, c, r)).ToList())).ToList();
        var sets = t.Sets.Select(s => new SourceSet(Set(t, s), s.Elements.Values.Select(Element).ToList())).ToList();
        return new SourceTable(table, chains, sets);
    }

    static NftChain Chain(TableRecord t, ChainRecord c) => new()
    {
        Family = t.Family,
        Table = t.Name,
        Name = c.Name,
        Handle = c.Handle,
        Flags = c.Flags,
        Hook = c.Hook is { } h ? new NftChainHook(h.HookNum, h.Priority, null, h.Devices.IsDefaultOrEmpty ? null : h.Devices) : null,
        Policy = c.Hook?.Policy,
        Type = c.Hook?.Type,
    };

    static NftRule Rule(TableRecord t, ChainRecord c, RuleRecord r) => new()
    {
        Family = t.Family,
        Table = t.Name,
        Chain = c.Name,
        Handle = r.Handle,
        Expressions = r.Expressions.Select(Expression).ToList(),
    };

    /// <summary>Decodes NFTA_EXPR_DATA as stored; a kind without a typed decoder stays opaque (the lifter refuses it by name).</summary>
    static Expression Expression(ExprRecord e)
    {
        var data = new NetlinkAttribute(ExpressionCodec.NFTA_EXPR_DATA, e.Data, 0);
        return ExpressionCodec.DecodeData(e.Name, data) ?? new OpaqueExpr(e.Name, e.Data);
    }

    static NftSet Set(TableRecord t, SetRecord s) => new()
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
        // Set statements are kept as bytes by the emulation; the lifter only needs to know they exist to refuse them.
        Expressions = s.Expressions is { Length: > 0 } x ? [new OpaqueExpr("set-statements", x)] : null,
    };

    public static NftSetElement Element(ElementRecord e) => new()
    {
        Key = e.Id.Key.Length > 0 ? new ValueData(e.Id.Key) : null,
        KeyEnd = e.Id.KeyEnd is { } end ? new ValueData(end) : null,
        Flags = e.Flags == 0 ? null : e.Flags,
        Data = e.Verdict is { } v ? new Nft.Bytecode.Data.VerdictData(new Verdict(v.Code, v.Chain))
            : e.Data is { } d ? new ValueData(d) : null,
        Timeout = e.Timeout,
        Expiration = e.ExpiresAtMs is { } at ? (ulong)Math.Max(0, at) : null,
        ObjRef = e.ObjRef,
        Expressions = e.Expressions is { Length: > 0 } x ? [new OpaqueExpr("element-statements", x)] : null,
    };
}
