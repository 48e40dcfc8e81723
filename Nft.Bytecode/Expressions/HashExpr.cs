using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>hash: jhash (Type 0) of Len bytes in SReg with Seed, or symmetric hash (1) of the flow, modulo Modulus plus Offset into DReg.</summary>
public sealed record HashExpr(uint DReg, uint Modulus, uint? SReg = null, uint? Len = null, uint? Seed = null, uint? Offset = null, uint? Type = null, string? SetName = null, uint? SetId = null) : AttributeExpression
{
    public const ushort NFTA_HASH_SREG = 1, NFTA_HASH_DREG = 2, NFTA_HASH_LEN = 3, NFTA_HASH_MODULUS = 4, NFTA_HASH_SEED = 5, NFTA_HASH_OFFSET = 6, NFTA_HASH_TYPE = 7, NFTA_HASH_SET_NAME = 8, NFTA_HASH_SET_ID = 9;
    public const uint TypeJenkins = 0, TypeSym = 1;
    public override string Name => "hash";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_HASH_SREG, NFTA_HASH_DREG, NFTA_HASH_LEN, NFTA_HASH_MODULUS, NFTA_HASH_SEED, NFTA_HASH_OFFSET, NFTA_HASH_TYPE, NFTA_HASH_SET_NAME, NFTA_HASH_SET_ID];

    public static HashExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sReg = ExprParse.Reg(ref p, NFTA_HASH_SREG);
        var dReg = ExprParse.Reg(ref p, NFTA_HASH_DREG) ?? throw p.Missing("NFTA_HASH_DREG");
        var len = p.U32Be(NFTA_HASH_LEN);
        var modulus = p.U32Be(NFTA_HASH_MODULUS) ?? throw p.Missing("NFTA_HASH_MODULUS");
        var seed = p.U32Be(NFTA_HASH_SEED);
        var offset = p.U32Be(NFTA_HASH_OFFSET);
        var @type = p.U32Be(NFTA_HASH_TYPE);
        var setName = p.Str(NFTA_HASH_SET_NAME, NftLimits.SetNameMax);
        var setId = p.U32Be(NFTA_HASH_SET_ID);
        if (modulus == 0) throw new NetlinkException(Errno.ERANGE, "hash modulus 0", p.NestOffset);
        return new HashExpr(dReg, modulus, sReg, len, seed, offset, @type, setName, setId) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_HASH_SREG => U32(w, raw, SReg),
        NFTA_HASH_DREG => U32(w, raw, DReg),
        NFTA_HASH_LEN => U32(w, raw, Len),
        NFTA_HASH_MODULUS => U32(w, raw, Modulus),
        NFTA_HASH_SEED => U32(w, raw, Seed),
        NFTA_HASH_OFFSET => U32(w, raw, Offset),
        NFTA_HASH_TYPE => U32(w, raw, Type),
        NFTA_HASH_SET_NAME => Str(w, raw, SetName),
        NFTA_HASH_SET_ID => U32(w, raw, SetId),
        _ => false,
    };
}
