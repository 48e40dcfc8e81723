using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>byteorder: converts Len bytes in SReg between host and network order in Size-byte units (Op 0 ntoh, 1 hton) into DReg.</summary>
public sealed record ByteorderExpr(uint SReg, uint DReg, uint Op, uint Len, uint Size) : AttributeExpression
{
    public const ushort NFTA_BYTEORDER_SREG = 1, NFTA_BYTEORDER_DREG = 2, NFTA_BYTEORDER_OP = 3, NFTA_BYTEORDER_LEN = 4, NFTA_BYTEORDER_SIZE = 5;
    public const uint OpNtoh = 0, OpHton = 1;
    public override string Name => "byteorder";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_BYTEORDER_SREG, NFTA_BYTEORDER_DREG, NFTA_BYTEORDER_OP, NFTA_BYTEORDER_LEN, NFTA_BYTEORDER_SIZE];

    public static ByteorderExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sReg = ExprParse.Reg(ref p, NFTA_BYTEORDER_SREG) ?? throw p.Missing("NFTA_BYTEORDER_SREG");
        var dReg = ExprParse.Reg(ref p, NFTA_BYTEORDER_DREG) ?? throw p.Missing("NFTA_BYTEORDER_DREG");
        var @op = p.U32Be(NFTA_BYTEORDER_OP) ?? throw p.Missing("NFTA_BYTEORDER_OP");
        var len = p.U32Be(NFTA_BYTEORDER_LEN) ?? throw p.Missing("NFTA_BYTEORDER_LEN");
        var size = p.U32Be(NFTA_BYTEORDER_SIZE) ?? throw p.Missing("NFTA_BYTEORDER_SIZE");
        if (@op > OpHton) throw ExprParse.Invalid(ref p, $"byteorder operation {@op}");
        if (size is not (2 or 4 or 8)) throw ExprParse.Invalid(ref p, $"byteorder size {size}");
        return new ByteorderExpr(sReg, dReg, @op, len, size) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_BYTEORDER_SREG => U32(w, raw, SReg),
        NFTA_BYTEORDER_DREG => U32(w, raw, DReg),
        NFTA_BYTEORDER_OP => U32(w, raw, Op),
        NFTA_BYTEORDER_LEN => U32(w, raw, Len),
        NFTA_BYTEORDER_SIZE => U32(w, raw, Size),
        _ => false,
    };
}
