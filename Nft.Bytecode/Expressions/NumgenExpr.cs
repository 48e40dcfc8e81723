using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>numgen: incremental (Type 0) or random (1) number modulo Modulus plus Offset into DReg.</summary>
public sealed record NumgenExpr(uint DReg, uint Modulus, uint Type, uint? Offset = null, string? SetName = null, uint? SetId = null) : AttributeExpression
{
    public const ushort NFTA_NG_DREG = 1, NFTA_NG_MODULUS = 2, NFTA_NG_TYPE = 3, NFTA_NG_OFFSET = 4, NFTA_NG_SET_NAME = 5, NFTA_NG_SET_ID = 6;
    public const uint TypeIncremental = 0, TypeRandom = 1;
    public override string Name => "numgen";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_NG_DREG, NFTA_NG_MODULUS, NFTA_NG_TYPE, NFTA_NG_OFFSET, NFTA_NG_SET_NAME, NFTA_NG_SET_ID];

    public static NumgenExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_NG_DREG) ?? throw p.Missing("NFTA_NG_DREG");
        var modulus = p.U32Be(NFTA_NG_MODULUS) ?? throw p.Missing("NFTA_NG_MODULUS");
        var @type = p.U32Be(NFTA_NG_TYPE) ?? throw p.Missing("NFTA_NG_TYPE");
        var offset = p.U32Be(NFTA_NG_OFFSET);
        var setName = p.Str(NFTA_NG_SET_NAME, NftLimits.SetNameMax);
        var setId = p.U32Be(NFTA_NG_SET_ID);
        if (modulus == 0) throw new NetlinkException(Errno.ERANGE, "numgen modulus 0", p.NestOffset);
        if (type > TypeRandom) throw ExprParse.Invalid(ref p, $"numgen type {type}");
        return new NumgenExpr(dReg, modulus, @type, offset, setName, setId) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_NG_DREG => U32(w, raw, DReg),
        NFTA_NG_MODULUS => U32(w, raw, Modulus),
        NFTA_NG_TYPE => U32(w, raw, Type),
        NFTA_NG_OFFSET => U32(w, raw, Offset),
        NFTA_NG_SET_NAME => Str(w, raw, SetName),
        NFTA_NG_SET_ID => U32(w, raw, SetId),
        _ => false,
    };
}
