using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>connlimit: matches when the conntrack count exceeds Count (or not, with NFT_CONNLIMIT_F_INV). Also a connlimit object's state.</summary>
public sealed record ConnlimitExpr(uint Count, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_CONNLIMIT_COUNT = 1, NFTA_CONNLIMIT_FLAGS = 2;
    public const uint NFT_CONNLIMIT_F_INV = 1;
    public override string Name => "connlimit";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_CONNLIMIT_COUNT, NFTA_CONNLIMIT_FLAGS];

    public static ConnlimitExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var count = p.U32Be(NFTA_CONNLIMIT_COUNT) ?? throw p.Missing("NFTA_CONNLIMIT_COUNT");
        var flags = p.U32Be(NFTA_CONNLIMIT_FLAGS);
        return new ConnlimitExpr(count, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_CONNLIMIT_COUNT => U32(w, raw, Count),
        NFTA_CONNLIMIT_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
