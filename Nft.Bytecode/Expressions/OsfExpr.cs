using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>osf: passive OS fingerprint name into DReg, with a TTL check mode and version flag.</summary>
public sealed record OsfExpr(uint DReg, byte? Ttl = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_OSF_DREG = 1, NFTA_OSF_TTL = 2, NFTA_OSF_FLAGS = 3;
    public override string Name => "osf";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_OSF_TTL, NFTA_OSF_FLAGS, NFTA_OSF_DREG];

    public static OsfExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_OSF_DREG) ?? throw p.Missing("NFTA_OSF_DREG");
        var ttl = p.U8(NFTA_OSF_TTL);
        var flags = p.U32Be(NFTA_OSF_FLAGS);
        return new OsfExpr(dReg, ttl, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_OSF_DREG => U32(w, raw, DReg),
        NFTA_OSF_TTL => U8(w, raw, Ttl),
        NFTA_OSF_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
