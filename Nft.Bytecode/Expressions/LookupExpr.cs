using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>lookup: set membership of the key in SReg; with DReg a map lookup; NFT_LOOKUP_F_INV negates.</summary>
public sealed record LookupExpr(string Set, uint? SetId, uint SReg, uint? DReg = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_LOOKUP_SET = 1, NFTA_LOOKUP_SREG = 2, NFTA_LOOKUP_DREG = 3, NFTA_LOOKUP_SET_ID = 4, NFTA_LOOKUP_FLAGS = 5;
    public const uint NFT_LOOKUP_F_INV = 1;
    public override string Name => "lookup";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_LOOKUP_SET, NFTA_LOOKUP_SREG, NFTA_LOOKUP_DREG, NFTA_LOOKUP_FLAGS, NFTA_LOOKUP_SET_ID];

    public bool Inverted => ((Flags ?? 0) & NFT_LOOKUP_F_INV) != 0;

    public static LookupExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var set = p.Str(NFTA_LOOKUP_SET, NftLimits.SetNameMax) ?? throw p.Missing("NFTA_LOOKUP_SET");
        var setId = p.U32Be(NFTA_LOOKUP_SET_ID);
        var sreg = ExprParse.ReqReg(ref p, NFTA_LOOKUP_SREG, "NFTA_LOOKUP_SREG");
        var dreg = ExprParse.Reg(ref p, NFTA_LOOKUP_DREG, allowVerdict: true); // verdict maps
        var flags = p.U32Be(NFTA_LOOKUP_FLAGS);
        if (flags is { } fl && (fl & ~NFT_LOOKUP_F_INV) != 0) throw ExprParse.NotSupported(ref p, $"lookup flags 0x{fl:x}");
        return new LookupExpr(set, setId, sreg, dreg, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_LOOKUP_SET => Str(w, raw, Set),
        NFTA_LOOKUP_SREG => U32(w, raw, SReg),
        NFTA_LOOKUP_DREG => U32(w, raw, DReg),
        NFTA_LOOKUP_SET_ID => U32(w, raw, SetId),
        NFTA_LOOKUP_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
