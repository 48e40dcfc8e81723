using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>quota: byte quota (NFT_QUOTA_F_INV for "over"), with bytes consumed so far. Also a quota object's state.</summary>
public sealed record QuotaExpr(ulong Bytes, uint? Flags = null, ulong? Consumed = null) : AttributeExpression
{
    public const ushort NFTA_QUOTA_BYTES = 1, NFTA_QUOTA_FLAGS = 2, NFTA_QUOTA_CONSUMED = 4;
    public const uint NFT_QUOTA_F_INV = 1, NFT_QUOTA_F_DEPLETED = 2;
    public override string Name => "quota";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_QUOTA_BYTES, NFTA_QUOTA_CONSUMED, NFTA_QUOTA_FLAGS];

    /// <summary>nft_quota_do_dump: `used` never shows more than the quota, which is then reported depleted.</summary>
    public QuotaExpr Dumped(ulong consumed) => this with
    {
        Consumed = Math.Min(consumed, Bytes),
        Flags = consumed >= Bytes ? (Flags ?? 0) | NFT_QUOTA_F_DEPLETED : Flags,
    };

    public static QuotaExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var bytes = p.U64Be(NFTA_QUOTA_BYTES) ?? throw p.Missing("NFTA_QUOTA_BYTES");
        var flags = p.U32Be(NFTA_QUOTA_FLAGS);
        var consumed = p.U64Be(NFTA_QUOTA_CONSUMED);
        return new QuotaExpr(bytes, flags, consumed) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_QUOTA_BYTES => U64(w, raw, Bytes),
        NFTA_QUOTA_FLAGS => U32(w, raw, Flags),
        NFTA_QUOTA_CONSUMED => U64(w, raw, Consumed),
        _ => false,
    };
}
