using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>nat: source (Type 0) or destination (1) NAT of Family to the addresses and ports held in registers.</summary>
public sealed record NatExpr(uint Type, uint Family, uint? RegAddrMin = null, uint? RegAddrMax = null, uint? RegProtoMin = null, uint? RegProtoMax = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_NAT_TYPE = 1, NFTA_NAT_FAMILY = 2, NFTA_NAT_REG_ADDR_MIN = 3, NFTA_NAT_REG_ADDR_MAX = 4, NFTA_NAT_REG_PROTO_MIN = 5, NFTA_NAT_REG_PROTO_MAX = 6, NFTA_NAT_FLAGS = 7;
    public const uint TypeSnat = 0, TypeDnat = 1;
    public override string Name => "nat";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_NAT_TYPE, NFTA_NAT_FAMILY, NFTA_NAT_REG_ADDR_MIN, NFTA_NAT_REG_ADDR_MAX, NFTA_NAT_REG_PROTO_MIN, NFTA_NAT_REG_PROTO_MAX, NFTA_NAT_FLAGS];

    public static NatExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var @type = p.U32Be(NFTA_NAT_TYPE) ?? throw p.Missing("NFTA_NAT_TYPE");
        var family = p.U32Be(NFTA_NAT_FAMILY) ?? throw p.Missing("NFTA_NAT_FAMILY");
        var regAddrMin = ExprParse.Reg(ref p, NFTA_NAT_REG_ADDR_MIN);
        var regAddrMax = ExprParse.Reg(ref p, NFTA_NAT_REG_ADDR_MAX);
        var regProtoMin = ExprParse.Reg(ref p, NFTA_NAT_REG_PROTO_MIN);
        var regProtoMax = ExprParse.Reg(ref p, NFTA_NAT_REG_PROTO_MAX);
        var flags = p.U32Be(NFTA_NAT_FLAGS);
        if (type > TypeDnat) throw ExprParse.NotSupported(ref p, $"nat type {type}");
        return new NatExpr(@type, family, regAddrMin, regAddrMax, regProtoMin, regProtoMax, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_NAT_TYPE => U32(w, raw, Type),
        NFTA_NAT_FAMILY => U32(w, raw, Family),
        NFTA_NAT_REG_ADDR_MIN => U32(w, raw, RegAddrMin),
        NFTA_NAT_REG_ADDR_MAX => U32(w, raw, RegAddrMax),
        NFTA_NAT_REG_PROTO_MIN => U32(w, raw, RegProtoMin),
        NFTA_NAT_REG_PROTO_MAX => U32(w, raw, RegProtoMax),
        NFTA_NAT_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
