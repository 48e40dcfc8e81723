using Nft.Bytecode.Data;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>cmp: compares the register SReg with Data (as many bytes as Data holds); a failed comparison breaks the rule.</summary>
public sealed record CmpExpr(uint SReg, uint Op, NftData Data) : AttributeExpression
{
    public const ushort NFTA_CMP_SREG = 1, NFTA_CMP_OP = 2, NFTA_CMP_DATA = 3;
    public const uint Eq = 0, Neq = 1, Lt = 2, Lte = 3, Gt = 4, Gte = 5;
    public override string Name => "cmp";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA];

    public byte[] Value => ((ValueData)Data).Value;

    public static CmpExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sreg = ExprParse.ReqReg(ref p, NFTA_CMP_SREG, "NFTA_CMP_SREG");
        var op = p.U32Be(NFTA_CMP_OP) ?? throw p.Missing("NFTA_CMP_OP");
        var d = ExprParse.ReqValue(ref p, NFTA_CMP_DATA, "NFTA_CMP_DATA");
        if (op > Gte) throw ExprParse.Invalid(ref p, $"cmp operation {op}");
        return new CmpExpr(sreg, op, d) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_CMP_SREG => U32(w, raw, SReg),
        NFTA_CMP_OP => U32(w, raw, Op),
        NFTA_CMP_DATA => Dat(w, raw, Data, f),
        _ => false,
    };
}
