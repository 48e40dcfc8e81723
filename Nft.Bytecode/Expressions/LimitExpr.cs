using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>limit: token bucket of Rate per Unit seconds with Burst; Type 0 packets, 1 bytes; NFT_LIMIT_F_INV for "over". Also a limit object's state.</summary>
public sealed record LimitExpr(ulong Rate, ulong Unit, uint? Burst = null, uint? Type = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_LIMIT_RATE = 1, NFTA_LIMIT_UNIT = 2, NFTA_LIMIT_BURST = 3, NFTA_LIMIT_TYPE = 4, NFTA_LIMIT_FLAGS = 5;
    public const uint TypePackets = 0, TypeBytes = 1;
    public const uint NFT_LIMIT_F_INV = 1;
    public override string Name => "limit";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_LIMIT_RATE, NFTA_LIMIT_UNIT, NFTA_LIMIT_BURST, NFTA_LIMIT_TYPE, NFTA_LIMIT_FLAGS];

    public static LimitExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var rate = p.U64Be(NFTA_LIMIT_RATE) ?? throw p.Missing("NFTA_LIMIT_RATE");
        var unit = p.U64Be(NFTA_LIMIT_UNIT) ?? throw p.Missing("NFTA_LIMIT_UNIT");
        var burst = p.U32Be(NFTA_LIMIT_BURST);
        var @type = p.U32Be(NFTA_LIMIT_TYPE);
        var flags = p.U32Be(NFTA_LIMIT_FLAGS);
        if (unit == 0 || unit > ulong.MaxValue / 1_000_000_000) throw new NetlinkException(ExprParse.Overflow, $"limit unit {unit}", p.NestOffset);
        return new LimitExpr(rate, unit, burst, @type, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_LIMIT_RATE => U64(w, raw, Rate),
        NFTA_LIMIT_UNIT => U64(w, raw, Unit),
        NFTA_LIMIT_BURST => U32(w, raw, Burst),
        NFTA_LIMIT_TYPE => U32(w, raw, Type),
        NFTA_LIMIT_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
