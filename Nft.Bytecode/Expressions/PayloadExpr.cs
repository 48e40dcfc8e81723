using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// payload: loads Len bytes at Offset from a header (Base: link, network, transport, inner) into DReg,
/// or with SReg writes them into the packet, fixing a checksum (CsumType at CsumOffset).
/// </summary>
public sealed record PayloadExpr(uint Base, uint Offset, uint Len, uint? DReg, uint? SReg = null, uint? CsumType = null,
    uint? CsumOffset = null, uint? CsumFlags = null) : AttributeExpression
{
    public const ushort NFTA_PAYLOAD_DREG = 1, NFTA_PAYLOAD_BASE = 2, NFTA_PAYLOAD_OFFSET = 3, NFTA_PAYLOAD_LEN = 4,
        NFTA_PAYLOAD_SREG = 5, NFTA_PAYLOAD_CSUM_TYPE = 6, NFTA_PAYLOAD_CSUM_OFFSET = 7, NFTA_PAYLOAD_CSUM_FLAGS = 8;
    public const uint BaseLinkLayer = 0, BaseNetwork = 1, BaseTransport = 2, BaseInner = 3, BaseTunnel = 4;
    public override string Name => "payload";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_SREG, NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_OFFSET,
        NFTA_PAYLOAD_LEN, NFTA_PAYLOAD_CSUM_TYPE, NFTA_PAYLOAD_CSUM_OFFSET, NFTA_PAYLOAD_CSUM_FLAGS];

    public bool IsSet => SReg != null;

    public static PayloadExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var b = p.U32Be(NFTA_PAYLOAD_BASE) ?? throw p.Missing("NFTA_PAYLOAD_BASE");
        var off = ExprParse.U32Max(ref p, NFTA_PAYLOAD_OFFSET, byte.MaxValue) ?? throw p.Missing("NFTA_PAYLOAD_OFFSET");
        var len = ExprParse.U32Max(ref p, NFTA_PAYLOAD_LEN, byte.MaxValue) ?? throw p.Missing("NFTA_PAYLOAD_LEN");
        if (b > BaseTunnel) throw ExprParse.NotSupported(ref p, $"payload base {b}");
        var dreg = ExprParse.Reg(ref p, NFTA_PAYLOAD_DREG);
        var sreg = ExprParse.Reg(ref p, NFTA_PAYLOAD_SREG);
        if ((dreg == null) == (sreg == null)) throw ExprParse.Invalid(ref p, "payload needs exactly one of a source and a destination register");
        // The kernel's register load/store validation refuses an empty value.
        if (len == 0) throw ExprParse.Invalid(ref p, "payload of length 0");
        // the initializer runs after the arguments' getters: the layout records them all
        return new PayloadExpr(b, off, len, dreg, sreg, p.U32Be(NFTA_PAYLOAD_CSUM_TYPE), p.U32Be(NFTA_PAYLOAD_CSUM_OFFSET),
            p.U32Be(NFTA_PAYLOAD_CSUM_FLAGS)) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_PAYLOAD_DREG => U32(w, raw, DReg),
        NFTA_PAYLOAD_BASE => U32(w, raw, Base),
        NFTA_PAYLOAD_OFFSET => U32(w, raw, Offset),
        NFTA_PAYLOAD_LEN => U32(w, raw, Len),
        NFTA_PAYLOAD_SREG => U32(w, raw, SReg),
        NFTA_PAYLOAD_CSUM_TYPE => U32(w, raw, CsumType),
        NFTA_PAYLOAD_CSUM_OFFSET => U32(w, raw, CsumOffset),
        NFTA_PAYLOAD_CSUM_FLAGS => U32(w, raw, CsumFlags),
        _ => false,
    };
}
