using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>counter: packets and bytes (initial values on input, current values in dumps). Also a counter object's state.</summary>
public sealed record CounterExpr(ulong? Bytes = null, ulong? Packets = null) : AttributeExpression
{
    public const ushort NFTA_COUNTER_BYTES = 1, NFTA_COUNTER_PACKETS = 2, NFTA_COUNTER_PAD = 3;
    public override string Name => "counter";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS];

    public static CounterExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        return new CounterExpr(p.U64Be(NFTA_COUNTER_BYTES), p.U64Be(NFTA_COUNTER_PACKETS)) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_COUNTER_BYTES => U64(w, raw, Bytes),
        NFTA_COUNTER_PACKETS => U64(w, raw, Packets),
        _ => false,
    };
}
