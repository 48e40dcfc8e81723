using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>xfrm: loads an IPsec state key (addresses, reqid, spi) of direction Dir and policy SpNum into DReg.</summary>
public sealed record XfrmExpr(uint DReg, uint Key, byte Dir, uint? SpNum = null) : AttributeExpression
{
    public const ushort NFTA_XFRM_DREG = 1, NFTA_XFRM_KEY = 2, NFTA_XFRM_DIR = 3, NFTA_XFRM_SPNUM = 4;
    public override string Name => "xfrm";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_XFRM_DREG, NFTA_XFRM_KEY, NFTA_XFRM_DIR, NFTA_XFRM_SPNUM];

    public static XfrmExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_XFRM_DREG) ?? throw p.Missing("NFTA_XFRM_DREG");
        var key = p.U32Be(NFTA_XFRM_KEY) ?? throw p.Missing("NFTA_XFRM_KEY");
        var dir = p.U8(NFTA_XFRM_DIR) ?? throw p.Missing("NFTA_XFRM_DIR");
        var spNum = p.U32Be(NFTA_XFRM_SPNUM);
        return new XfrmExpr(dReg, key, dir, spNum) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_XFRM_DREG => U32(w, raw, DReg),
        NFTA_XFRM_KEY => U32(w, raw, Key),
        NFTA_XFRM_DIR => U8(w, raw, Dir),
        NFTA_XFRM_SPNUM => U32(w, raw, SpNum),
        _ => false,
    };
}
