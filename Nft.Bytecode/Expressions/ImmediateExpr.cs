using Nft.Bytecode.Data;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>immediate: loads a constant into a register, or a verdict into the verdict register (DReg 0).</summary>
public sealed record ImmediateExpr(uint DReg, NftData Data) : AttributeExpression
{
    public const ushort NFTA_IMMEDIATE_DREG = 1, NFTA_IMMEDIATE_DATA = 2;
    public override string Name => "immediate";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_IMMEDIATE_DREG, NFTA_IMMEDIATE_DATA];

    /// <summary>The verdict when this loads the verdict register.</summary>
    public Verdict? Verdict => Data is VerdictData v ? v.Verdict : null;

    public static ImmediateExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        uint dreg = ExprParse.ReqReg(ref p, NFTA_IMMEDIATE_DREG, "NFTA_IMMEDIATE_DREG", allowVerdict: true);
        var d = ExprParse.ReqData(ref p, NFTA_IMMEDIATE_DATA, "NFTA_IMMEDIATE_DATA");
        if ((dreg == NftRegisters.Verdict) != (d is VerdictData))
            throw ExprParse.Invalid(ref p, "verdicts go to the verdict register and only there");
        return new ImmediateExpr(dreg, d) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_IMMEDIATE_DREG => U32(w, raw, DReg),
        NFTA_IMMEDIATE_DATA => Dat(w, raw, Data, f),
        _ => false,
    };
}
