using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>reject: answers with an ICMP/ICMPv6 unreachable (Type 0), a TCP reset (1) or an ICMPX code (2), then drops.</summary>
public sealed record RejectExpr(uint Type, byte? IcmpCode = null) : AttributeExpression
{
    public const ushort NFTA_REJECT_TYPE = 1, NFTA_REJECT_ICMP_CODE = 2;
    public const uint TypeIcmpUnreach = 0, TypeTcpRst = 1, TypeIcmpxUnreach = 2;
    public override string Name => "reject";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_REJECT_TYPE, NFTA_REJECT_ICMP_CODE];

    public static RejectExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var @type = p.U32Be(NFTA_REJECT_TYPE) ?? throw p.Missing("NFTA_REJECT_TYPE");
        var icmpCode = p.U8(NFTA_REJECT_ICMP_CODE);
        if (type > TypeIcmpxUnreach) throw ExprParse.Invalid(ref p, $"reject type {type}");
        return new RejectExpr(@type, icmpCode) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_REJECT_TYPE => U32(w, raw, Type),
        NFTA_REJECT_ICMP_CODE => U8(w, raw, IcmpCode),
        _ => false,
    };
}
