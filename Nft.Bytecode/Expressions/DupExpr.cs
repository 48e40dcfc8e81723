using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>dup: duplicates the packet to the address in SRegAddr, via the device in SRegDev.</summary>
public sealed record DupExpr(uint? SRegAddr = null, uint? SRegDev = null) : AttributeExpression
{
    public const ushort NFTA_DUP_SREG_ADDR = 1, NFTA_DUP_SREG_DEV = 2;
    public override string Name => "dup";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_DUP_SREG_ADDR, NFTA_DUP_SREG_DEV];

    public static DupExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var sRegAddr = ExprParse.Reg(ref p, NFTA_DUP_SREG_ADDR);
        var sRegDev = ExprParse.Reg(ref p, NFTA_DUP_SREG_DEV);
        return new DupExpr(sRegAddr, sRegDev) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_DUP_SREG_ADDR => U32(w, raw, SRegAddr),
        NFTA_DUP_SREG_DEV => U32(w, raw, SRegDev),
        _ => false,
    };
}
