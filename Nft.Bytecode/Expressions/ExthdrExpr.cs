using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>exthdr: loads (DReg), writes (SReg) or tests the presence of an IPv6 extension header, TCP/IPv4/SCTP/DCCP option field.</summary>
public sealed record ExthdrExpr(byte Type, uint? DReg = null, uint? Offset = null, uint? Len = null, uint? Flags = null, uint? Op = null, uint? SReg = null) : AttributeExpression
{
    public const ushort NFTA_EXTHDR_DREG = 1, NFTA_EXTHDR_TYPE = 2, NFTA_EXTHDR_OFFSET = 3, NFTA_EXTHDR_LEN = 4, NFTA_EXTHDR_FLAGS = 5, NFTA_EXTHDR_OP = 6, NFTA_EXTHDR_SREG = 7;
    public const uint OpIpv6 = 0, OpTcpOpt = 1, OpIpv4 = 2, OpSctp = 3, OpDccp = 4;
    public const uint NFT_EXTHDR_F_PRESENT = 1;
    public override string Name => "exthdr";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_EXTHDR_DREG, NFTA_EXTHDR_SREG, NFTA_EXTHDR_TYPE, NFTA_EXTHDR_OFFSET, NFTA_EXTHDR_LEN, NFTA_EXTHDR_FLAGS, NFTA_EXTHDR_OP];

    public static ExthdrExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var dReg = ExprParse.Reg(ref p, NFTA_EXTHDR_DREG);
        var @type = p.U8(NFTA_EXTHDR_TYPE) ?? throw p.Missing("NFTA_EXTHDR_TYPE");
        var offset = p.U32Be(NFTA_EXTHDR_OFFSET);
        var len = p.U32Be(NFTA_EXTHDR_LEN);
        var flags = p.U32Be(NFTA_EXTHDR_FLAGS);
        var @op = p.U32Be(NFTA_EXTHDR_OP);
        var sReg = ExprParse.Reg(ref p, NFTA_EXTHDR_SREG);
        if (@op is > OpDccp) throw ExprParse.NotSupported(ref p, $"exthdr operation {@op}");
        return new ExthdrExpr(@type, dReg, offset, len, flags, @op, sReg) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_EXTHDR_DREG => U32(w, raw, DReg),
        NFTA_EXTHDR_TYPE => U8(w, raw, Type),
        NFTA_EXTHDR_OFFSET => U32(w, raw, Offset),
        NFTA_EXTHDR_LEN => U32(w, raw, Len),
        NFTA_EXTHDR_FLAGS => U32(w, raw, Flags),
        NFTA_EXTHDR_OP => U32(w, raw, Op),
        NFTA_EXTHDR_SREG => U32(w, raw, SReg),
        _ => false,
    };
}
