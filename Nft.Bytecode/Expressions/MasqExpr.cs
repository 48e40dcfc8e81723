using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>masq: source NAT to the outgoing interface address, optionally to a port range held in registers.</summary>
public sealed record MasqExpr(uint? Flags = null, uint? RegProtoMin = null, uint? RegProtoMax = null) : AttributeExpression
{
    public const ushort NFTA_MASQ_FLAGS = 1, NFTA_MASQ_REG_PROTO_MIN = 2, NFTA_MASQ_REG_PROTO_MAX = 3;
    public override string Name => "masq";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_MASQ_FLAGS, NFTA_MASQ_REG_PROTO_MIN, NFTA_MASQ_REG_PROTO_MAX];

    public static MasqExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var flags = p.U32Be(NFTA_MASQ_FLAGS);
        var regProtoMin = ExprParse.Reg(ref p, NFTA_MASQ_REG_PROTO_MIN);
        var regProtoMax = ExprParse.Reg(ref p, NFTA_MASQ_REG_PROTO_MAX);
        return new MasqExpr(flags, regProtoMin, regProtoMax) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_MASQ_FLAGS => U32(w, raw, Flags),
        NFTA_MASQ_REG_PROTO_MIN => U32(w, raw, RegProtoMin),
        NFTA_MASQ_REG_PROTO_MAX => U32(w, raw, RegProtoMax),
        _ => false,
    };
}
