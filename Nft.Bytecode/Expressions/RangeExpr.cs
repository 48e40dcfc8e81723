using Nft.Bytecode.Data;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>range: From &lt;= SReg &lt;= To (Op 0) or outside it (Op 1), compared as big-endian bytes.</summary>
public sealed record RangeExpr(uint SReg, uint Op, NftData From, NftData To) : AttributeExpression
{
    public const ushort NFTA_RANGE_SREG = 1, NFTA_RANGE_OP = 2, NFTA_RANGE_FROM_DATA = 3, NFTA_RANGE_TO_DATA = 4;
    public const uint OpEq = 0, OpNeq = 1;
    public override string Name => "range";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_RANGE_SREG, NFTA_RANGE_OP, NFTA_RANGE_FROM_DATA, NFTA_RANGE_TO_DATA];

    public static RangeExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sreg = ExprParse.ReqReg(ref p, NFTA_RANGE_SREG, "NFTA_RANGE_SREG");
        var op = p.U32Be(NFTA_RANGE_OP) ?? throw p.Missing("NFTA_RANGE_OP");
        var from = ExprParse.ReqValue(ref p, NFTA_RANGE_FROM_DATA, "NFTA_RANGE_FROM_DATA");
        var to = ExprParse.ReqValue(ref p, NFTA_RANGE_TO_DATA, "NFTA_RANGE_TO_DATA");
        if (((ValueData)from).Value.Length != ((ValueData)to).Value.Length) throw ExprParse.Invalid(ref p, "range bounds differ in length");
        if (op > OpNeq) throw ExprParse.Invalid(ref p, $"range operation {op}");
        return new RangeExpr(sreg, op, from, to) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_RANGE_SREG => U32(w, raw, SReg),
        NFTA_RANGE_OP => U32(w, raw, Op),
        NFTA_RANGE_FROM_DATA => Dat(w, raw, From, f),
        NFTA_RANGE_TO_DATA => Dat(w, raw, To, f),
        _ => false,
    };
}
