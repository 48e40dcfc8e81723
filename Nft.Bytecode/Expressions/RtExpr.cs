using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>rt: loads a routing key (classid, nexthop, tcpmss, xfrm) into DReg.</summary>
public sealed record RtExpr(uint DReg, uint Key) : AttributeExpression
{
    public const ushort NFTA_RT_DREG = 1, NFTA_RT_KEY = 2;
    public override string Name => "rt";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_RT_KEY, NFTA_RT_DREG];

    public static RtExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_RT_DREG) ?? throw p.Missing("NFTA_RT_DREG");
        var key = p.U32Be(NFTA_RT_KEY) ?? throw p.Missing("NFTA_RT_KEY");
        return new RtExpr(dReg, key) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_RT_DREG => U32(w, raw, DReg),
        NFTA_RT_KEY => U32(w, raw, Key),
        _ => false,
    };
}
