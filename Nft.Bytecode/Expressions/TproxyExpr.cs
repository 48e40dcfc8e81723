using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>tproxy: transparent proxying to the address and port held in registers.</summary>
public sealed record TproxyExpr(uint Family, uint? RegAddr = null, uint? RegPort = null) : AttributeExpression
{
    public const ushort NFTA_TPROXY_FAMILY = 1, NFTA_TPROXY_REG_ADDR = 2, NFTA_TPROXY_REG_PORT = 3;
    public override string Name => "tproxy";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_TPROXY_FAMILY, NFTA_TPROXY_REG_ADDR, NFTA_TPROXY_REG_PORT];

    public static TproxyExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var family = p.U32Be(NFTA_TPROXY_FAMILY) ?? throw p.Missing("NFTA_TPROXY_FAMILY");
        var regAddr = ExprParse.Reg(ref p, NFTA_TPROXY_REG_ADDR);
        var regPort = ExprParse.Reg(ref p, NFTA_TPROXY_REG_PORT);
        return new TproxyExpr(family, regAddr, regPort) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_TPROXY_FAMILY => U32(w, raw, Family),
        NFTA_TPROXY_REG_ADDR => U32(w, raw, RegAddr),
        NFTA_TPROXY_REG_PORT => U32(w, raw, RegPort),
        _ => false,
    };
}
