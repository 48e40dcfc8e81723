using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>log: logs the packet with a prefix, to syslog at Level with Flags, or to nflog Group with Snaplen and QThreshold.</summary>
public sealed record LogExpr(ushort? Group = null, string? Prefix = null, uint? Snaplen = null, ushort? QThreshold = null, uint? Level = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_LOG_GROUP = 1, NFTA_LOG_PREFIX = 2, NFTA_LOG_SNAPLEN = 3, NFTA_LOG_QTHRESHOLD = 4, NFTA_LOG_LEVEL = 5, NFTA_LOG_FLAGS = 6;
    public override string Name => "log";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_LOG_PREFIX, NFTA_LOG_GROUP, NFTA_LOG_SNAPLEN, NFTA_LOG_QTHRESHOLD, NFTA_LOG_LEVEL, NFTA_LOG_FLAGS];

    public static LogExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var group = p.U16Be(NFTA_LOG_GROUP);
        var prefix = p.Str(NFTA_LOG_PREFIX, NftLimits.LogPrefixMax);
        var snaplen = p.U32Be(NFTA_LOG_SNAPLEN);
        var qThreshold = p.U16Be(NFTA_LOG_QTHRESHOLD);
        var level = p.U32Be(NFTA_LOG_LEVEL);
        var flags = p.U32Be(NFTA_LOG_FLAGS);
        if (group != null && level != null) throw ExprParse.Invalid(ref p, "log group and level exclude each other");
        if (level is > 8) throw ExprParse.Invalid(ref p, $"log level {level}");
        return new LogExpr(group, prefix, snaplen, qThreshold, level, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_LOG_GROUP => U16(w, raw, Group),
        NFTA_LOG_PREFIX => Str(w, raw, Prefix),
        NFTA_LOG_SNAPLEN => U32(w, raw, Snaplen),
        NFTA_LOG_QTHRESHOLD => U16(w, raw, QThreshold),
        NFTA_LOG_LEVEL => U32(w, raw, Level),
        NFTA_LOG_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
