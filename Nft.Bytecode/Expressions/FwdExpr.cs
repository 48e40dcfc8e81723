using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>fwd: forwards the packet (netdev) to the device in SRegDev, for NfProto to the address in SRegAddr.</summary>
public sealed record FwdExpr(uint SRegDev, uint? SRegAddr = null, uint? NfProto = null) : AttributeExpression
{
    public const ushort NFTA_FWD_SREG_DEV = 1, NFTA_FWD_SREG_ADDR = 2, NFTA_FWD_NFPROTO = 3;
    public override string Name => "fwd";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_FWD_SREG_DEV, NFTA_FWD_SREG_ADDR, NFTA_FWD_NFPROTO];

    public static FwdExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sRegDev = ExprParse.Reg(ref p, NFTA_FWD_SREG_DEV) ?? throw p.Missing("NFTA_FWD_SREG_DEV");
        var sRegAddr = ExprParse.Reg(ref p, NFTA_FWD_SREG_ADDR);
        var nfProto = p.U32Be(NFTA_FWD_NFPROTO);
        return new FwdExpr(sRegDev, sRegAddr, nfProto) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_FWD_SREG_DEV => U32(w, raw, SRegDev),
        NFTA_FWD_SREG_ADDR => U32(w, raw, SRegAddr),
        NFTA_FWD_NFPROTO => U32(w, raw, NfProto),
        _ => false,
    };
}
