using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>fib: routing lookup (Flags: which addresses, iif/oif, mark) whose Result (oif, oifname, address type) goes to DReg.</summary>
public sealed record FibExpr(uint DReg, uint Result, uint Flags) : AttributeExpression
{
    public const ushort NFTA_FIB_DREG = 1, NFTA_FIB_RESULT = 2, NFTA_FIB_FLAGS = 3;
    public override string Name => "fib";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_FIB_DREG, NFTA_FIB_RESULT, NFTA_FIB_FLAGS];

    public static FibExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_FIB_DREG) ?? throw p.Missing("NFTA_FIB_DREG");
        var result = p.U32Be(NFTA_FIB_RESULT) ?? throw p.Missing("NFTA_FIB_RESULT");
        var flags = p.U32Be(NFTA_FIB_FLAGS) ?? throw p.Missing("NFTA_FIB_FLAGS");
        return new FibExpr(dReg, result, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_FIB_DREG => U32(w, raw, DReg),
        NFTA_FIB_RESULT => U32(w, raw, Result),
        NFTA_FIB_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
