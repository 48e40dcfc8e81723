using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>notrack: marks the packet untracked. It has no attributes, and the kernel dumps no NFTA_EXPR_DATA for it.</summary>
public sealed record NotrackExpr : AttributeExpression
{
    public override string Name => "notrack";
    protected override ReadOnlySpan<ushort> KernelOrder => [];
    public override bool KernelDumpsData => false;

    public static NotrackExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        return new NotrackExpr { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => false;
}
