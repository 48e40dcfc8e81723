using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>meta: loads packet metadata (Key: NFT_META_*) into DReg, or sets it from SReg.</summary>
public sealed record MetaExpr(uint Key, uint? DReg, uint? SReg = null) : AttributeExpression
{
    public const ushort NFTA_META_DREG = 1, NFTA_META_KEY = 2, NFTA_META_SREG = 3;

    // NFT_META_* keys the lifter meets most
    public const uint KeyLen = 0, KeyProtocol = 1, KeyPriority = 2, KeyMark = 3, KeyIif = 4, KeyOif = 5, KeyIifName = 6,
        KeyOifName = 7, KeyIifType = 8, KeyOifType = 9, KeySkUid = 10, KeySkGid = 11, KeyNfTrace = 12, KeyRtClassId = 13,
        KeySecmark = 14, KeyNfProto = 15, KeyL4Proto = 16, KeyBriIifName = 17, KeyBriOifName = 18, KeyPktType = 19, KeyCpu = 20,
        KeyIifGroup = 21, KeyOifGroup = 22, KeyCgroup = 23, KeyPrandom = 24, KeySecpath = 25, KeyIifKind = 26, KeyOifKind = 27,
        KeyBriIifPvid = 28, KeyBriIifVproto = 29, KeyTimeNs = 30, KeyTimeDay = 31, KeyTimeHour = 32, KeySdif = 33, KeySdifName = 34,
        KeyBriBroute = 35;

    public override string Name => "meta";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_META_KEY, NFTA_META_DREG, NFTA_META_SREG];

    public bool IsSet => SReg != null;

    public static MetaExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var key = p.U32Be(NFTA_META_KEY) ?? throw p.Missing("NFTA_META_KEY");
        var dreg = ExprParse.Reg(ref p, NFTA_META_DREG);
        var sreg = ExprParse.Reg(ref p, NFTA_META_SREG);
        if ((dreg == null) == (sreg == null)) throw ExprParse.Invalid(ref p, "meta needs exactly one of a source and a destination register");
        return new MetaExpr(key, dreg, sreg) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_META_DREG => U32(w, raw, DReg),
        NFTA_META_KEY => U32(w, raw, Key),
        NFTA_META_SREG => U32(w, raw, SReg),
        _ => false,
    };
}
