using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>synproxy: answers SYNs with cookies using Mss and Wscale (Flags: timestamp, sack-perm). Also a synproxy object's state.</summary>
public sealed record SynproxyExpr(ushort? Mss = null, byte? Wscale = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_SYNPROXY_MSS = 1, NFTA_SYNPROXY_WSCALE = 2, NFTA_SYNPROXY_FLAGS = 3;
    public override string Name => "synproxy";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_SYNPROXY_MSS, NFTA_SYNPROXY_WSCALE, NFTA_SYNPROXY_FLAGS];

    public static SynproxyExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var mss = p.U16Be(NFTA_SYNPROXY_MSS);
        var wscale = p.U8(NFTA_SYNPROXY_WSCALE);
        var flags = p.U32Be(NFTA_SYNPROXY_FLAGS);
        return new SynproxyExpr(mss, wscale, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_SYNPROXY_MSS => U16(w, raw, Mss),
        NFTA_SYNPROXY_WSCALE => U8(w, raw, Wscale),
        NFTA_SYNPROXY_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
