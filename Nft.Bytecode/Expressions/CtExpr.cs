using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>ct: loads a conntrack key (NFT_CT_*) into DReg, optionally for one direction, or sets it from SReg.</summary>
public sealed record CtExpr(uint Key, uint? DReg = null, byte? Direction = null, uint? SReg = null) : AttributeExpression
{
    public const ushort NFTA_CT_DREG = 1, NFTA_CT_KEY = 2, NFTA_CT_DIRECTION = 3, NFTA_CT_SREG = 4;
    public const uint KeyState = 0, KeyDirection = 1, KeyStatus = 2, KeyMark = 3, KeySecmark = 4, KeyExpiration = 5, KeyHelper = 6,
        KeyL3Protocol = 7, KeySrc = 8, KeyDst = 9, KeyProtocol = 10, KeyProtoSrc = 11, KeyProtoDst = 12, KeyLabels = 13, KeyPkts = 14,
        KeyBytes = 15, KeyAvgPkt = 16, KeyZone = 17, KeyEventMask = 18, KeySrcIp = 19, KeyDstIp = 20, KeySrcIp6 = 21, KeyDstIp6 = 22, KeyId = 23;
    public override string Name => "ct";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_CT_DREG, NFTA_CT_SREG, NFTA_CT_KEY, NFTA_CT_DIRECTION];
    public bool IsSet => SReg != null;

    public static CtExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_CT_DREG);
        var key = p.U32Be(NFTA_CT_KEY) ?? throw p.Missing("NFTA_CT_KEY");
        var direction = p.U8(NFTA_CT_DIRECTION);
        var sReg = ExprParse.Reg(ref p, NFTA_CT_SREG);
        if ((dReg == null) == (sReg == null)) throw ExprParse.Invalid(ref p, "ct needs exactly one of a source and a destination register");
        return new CtExpr(key, dReg, direction, sReg) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_CT_DREG => U32(w, raw, DReg),
        NFTA_CT_KEY => U32(w, raw, Key),
        NFTA_CT_DIRECTION => U8(w, raw, Direction),
        NFTA_CT_SREG => U32(w, raw, SReg),
        _ => false,
    };
}
