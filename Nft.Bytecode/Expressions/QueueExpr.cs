using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>queue: hands the packet to userspace queue Num (Total queues for fanout) or to the queue in SRegQnum.</summary>
public sealed record QueueExpr(ushort? Num = null, ushort? Total = null, ushort? Flags = null, uint? SRegQnum = null) : AttributeExpression
{
    public const ushort NFTA_QUEUE_NUM = 1, NFTA_QUEUE_TOTAL = 2, NFTA_QUEUE_FLAGS = 3, NFTA_QUEUE_SREG_QNUM = 4;
    public const ushort FlagBypass = 1, FlagCpuFanout = 2;
    public override string Name => "queue";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_QUEUE_NUM, NFTA_QUEUE_TOTAL, NFTA_QUEUE_SREG_QNUM, NFTA_QUEUE_FLAGS];

    public static QueueExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var num = p.U16Be(NFTA_QUEUE_NUM);
        var total = p.U16Be(NFTA_QUEUE_TOTAL);
        var flags = p.U16Be(NFTA_QUEUE_FLAGS);
        var sRegQnum = ExprParse.Reg(ref p, NFTA_QUEUE_SREG_QNUM);
        return new QueueExpr(num, total, flags, sRegQnum) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_QUEUE_NUM => U16(w, raw, Num),
        NFTA_QUEUE_TOTAL => U16(w, raw, Total),
        NFTA_QUEUE_FLAGS => U16(w, raw, Flags),
        NFTA_QUEUE_SREG_QNUM => U32(w, raw, SRegQnum),
        _ => false,
    };
}
