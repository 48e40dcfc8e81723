using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>last: when the rule last matched (Set 1 once it has, Msecs ago).</summary>
public sealed record LastExpr(uint? Set = null, ulong? Msecs = null) : AttributeExpression
{
    public const ushort NFTA_LAST_SET = 1, NFTA_LAST_MSECS = 2;
    public override string Name => "last";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_LAST_SET, NFTA_LAST_MSECS];

    public static LastExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var set = p.U32Be(NFTA_LAST_SET);
        var msecs = p.U64Be(NFTA_LAST_MSECS);
        return new LastExpr(set, msecs) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_LAST_SET => U32(w, raw, Set),
        NFTA_LAST_MSECS => U64(w, raw, Msecs),
        _ => false,
    };
}
