using Nft.Bytecode.Expressions;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWRULE / GETRULE / DELRULE contents: placement, expressions and user data (comments).</summary>
public sealed record Rule : IAttributeSource
{
    public byte Family { get; init; }
    public string? Table { get; init; }
    public string? Chain { get; init; }
    public ulong? Handle { get; init; }
    public IReadOnlyList<Expression>? Expressions { get; init; }
    public RuleCompat? Compat { get; init; }
    public ulong? Position { get; init; }
    /// <summary>NFTA_RULE_USERDATA: nft's TLVs (comment = type 0); see <see cref="UserData"/>.</summary>
    public byte[]? UserData { get; init; }
    public uint? Id { get; init; }
    public uint? PositionId { get; init; }
    public uint? ChainId { get; init; }
    public AttributeLayout? Layout { get; init; }

    static readonly ushort[] KernelOrder = [NftaRule.Table, NftaRule.Chain, NftaRule.Handle, NftaRule.Position,
        NftaRule.Expressions, NftaRule.UserData, NftaRule.Compat, NftaRule.Id, NftaRule.PositionId, NftaRule.ChainId];

    /// <summary>The comment nft stores in the user data, if any.</summary>
    public string? Comment => Objects.UserData.Comment(UserData);

    public static Rule Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        var r = new Rule
        {
            Family = msg.GenMsg.Family,
            Table = p.Str(NftaRule.Table, NftLimits.TableNameMax),
            Chain = p.Str(NftaRule.Chain, NftLimits.ChainNameMax),
            Handle = p.U64Be(NftaRule.Handle),
            Expressions = p.TryGet(NftaRule.Expressions, out var ex) ? AttrLists.ReadExpressions(ex, NftLimits.RuleMaxExprs) : null,
            Compat = p.TryGet(NftaRule.Compat, out var cp) ? RuleCompat.Decode(cp) : null,
            Position = p.U64Be(NftaRule.Position),
            UserData = p.Bytes(NftaRule.UserData, NftLimits.UserDataMaxLen),
            Id = p.U32Be(NftaRule.Id),
            PositionId = p.U32Be(NftaRule.PositionId),
            ChainId = p.U32Be(NftaRule.ChainId),
        };
        return r with { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaRule.Table when Table != null: AttrWriter.PutString(w, raw, Table); return true;
            case NftaRule.Chain when Chain != null: AttrWriter.PutString(w, raw, Chain); return true;
            case NftaRule.Handle when Handle != null: w.PutU64Be(raw, Handle.Value); return true;
            case NftaRule.Expressions when Expressions != null: AttrLists.Expressions(w, raw, Expressions, f); return true;
            case NftaRule.Compat when Compat != null: Compat.Encode(w, raw, f); return true;
            case NftaRule.Position when Position != null: w.PutU64Be(raw, Position.Value); return true;
            case NftaRule.UserData when UserData != null: w.PutRaw(raw, UserData); return true;
            case NftaRule.Id when Id != null: w.PutU32Be(raw, Id.Value); return true;
            case NftaRule.PositionId when PositionId != null: w.PutU32Be(raw, PositionId.Value); return true;
            case NftaRule.ChainId when ChainId != null: w.PutU32Be(raw, ChainId.Value); return true;
            default: return false;
        }
    }

    public bool Equals(Rule? o) => o is not null && Family == o.Family && Table == o.Table && Chain == o.Chain && Handle == o.Handle
        && Bin.Eq(Expressions, o.Expressions) && Equals(Compat, o.Compat) && Position == o.Position && Bin.Eq(UserData, o.UserData)
        && Id == o.Id && PositionId == o.PositionId && ChainId == o.ChainId && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Family, Table, Chain, Handle);
}

/// <summary>NFTA_RULE_COMPAT: the l4 protocol and flags xtables matches/targets need.</summary>
public sealed record RuleCompat(uint? Proto, uint? Flags) : IAttributeSource
{
    public AttributeLayout? Layout { get; init; }
    static readonly ushort[] KernelOrder = [NftaRuleCompat.Proto, NftaRuleCompat.Flags];

    public static RuleCompat Decode(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        return new RuleCompat(p.U32Be(NftaRuleCompat.Proto), p.U32Be(NftaRuleCompat.Flags)) { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, ushort type, WireFormat f) =>
        AttrLists.Nested(w, AttrWriter.NestType(Layout, type, f), Layout, KernelOrder, this, f);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaRuleCompat.Proto when Proto != null: w.PutU32Be(raw, Proto.Value); return true;
            case NftaRuleCompat.Flags when Flags != null: w.PutU32Be(raw, Flags.Value); return true;
            default: return false;
        }
    }
}
