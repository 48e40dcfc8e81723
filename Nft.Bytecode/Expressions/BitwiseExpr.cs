using Nft.Bytecode.Data;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// bitwise: DReg = (SReg &amp; Mask) ^ Xor over Len bytes (Op 0, the default), or a shift of SReg by
/// Data bits (Op 1 left, 2 right), or (6.13+) and/or/xor with the register SReg2.
/// </summary>
public sealed record BitwiseExpr(uint SReg, uint DReg, uint Len, uint? Op = null, NftData? Mask = null, NftData? Xor = null,
    NftData? Data = null, uint? SReg2 = null) : AttributeExpression
{
    public const ushort NFTA_BITWISE_SREG = 1, NFTA_BITWISE_DREG = 2, NFTA_BITWISE_LEN = 3, NFTA_BITWISE_MASK = 4,
        NFTA_BITWISE_XOR = 5, NFTA_BITWISE_OP = 6, NFTA_BITWISE_DATA = 7, NFTA_BITWISE_SREG2 = 8;
    public const uint OpMaskXor = 0, OpLshift = 1, OpRshift = 2, OpAnd = 3, OpOr = 4, OpXor = 5;
    public override string Name => "bitwise";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_BITWISE_SREG, NFTA_BITWISE_DREG, NFTA_BITWISE_LEN, NFTA_BITWISE_OP,
        NFTA_BITWISE_MASK, NFTA_BITWISE_XOR, NFTA_BITWISE_DATA, NFTA_BITWISE_SREG2];

    public uint Operation => Op ?? OpMaskXor;

    public static BitwiseExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sreg = ExprParse.ReqReg(ref p, NFTA_BITWISE_SREG, "NFTA_BITWISE_SREG");
        var dreg = ExprParse.ReqReg(ref p, NFTA_BITWISE_DREG, "NFTA_BITWISE_DREG");
        var len = ExprParse.U32Max(ref p, NFTA_BITWISE_LEN, byte.MaxValue) ?? throw p.Missing("NFTA_BITWISE_LEN");
        if (len == 0) throw ExprParse.Invalid(ref p, "bitwise length 0");
        var op = p.U32Be(NFTA_BITWISE_OP);
        uint eff = op ?? OpMaskXor;
        if (eff > OpXor) throw ExprParse.NotSupported(ref p, $"bitwise operation {eff}");
        NftData? mask = null, xor = null, shift = null;
        uint? sreg2 = null;
        switch (eff)
        {
            case OpMaskXor:
                mask = ExprParse.ReqValue(ref p, NFTA_BITWISE_MASK, "NFTA_BITWISE_MASK", NftLimits.DataValueMaxLen);
                xor = ExprParse.ReqValue(ref p, NFTA_BITWISE_XOR, "NFTA_BITWISE_XOR", NftLimits.DataValueMaxLen);
                if (((ValueData)mask).Value.Length != len || ((ValueData)xor).Value.Length != len)
                    throw ExprParse.Invalid(ref p, "bitwise mask and xor must be as long as the operation");
                break;
            case OpLshift or OpRshift:
                shift = ExprParse.ReqValue(ref p, NFTA_BITWISE_DATA, "NFTA_BITWISE_DATA");
                if (((ValueData)shift).Value.Length != 4) throw ExprParse.Invalid(ref p, "bitwise shift must be 4 bytes");
                break;
            default:
                sreg2 = ExprParse.ReqReg(ref p, NFTA_BITWISE_SREG2, "NFTA_BITWISE_SREG2");
                break;
        }
        return new BitwiseExpr(sreg, dreg, len, op, mask, xor, shift, sreg2) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_BITWISE_SREG => U32(w, raw, SReg),
        NFTA_BITWISE_DREG => U32(w, raw, DReg),
        NFTA_BITWISE_LEN => U32(w, raw, Len),
        NFTA_BITWISE_OP => U32(w, raw, Op),
        NFTA_BITWISE_MASK => Dat(w, raw, Mask, f),
        NFTA_BITWISE_XOR => Dat(w, raw, Xor, f),
        NFTA_BITWISE_DATA => Dat(w, raw, Data, f),
        NFTA_BITWISE_SREG2 => U32(w, raw, SReg2),
        _ => false,
    };
}
