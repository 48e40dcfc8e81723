using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>socket: loads a key of the packet's socket (transparent, mark, wildcard, cgroupv2 at Level) into DReg.</summary>
public sealed record SocketExpr(uint Key, uint DReg, uint? Level = null) : AttributeExpression
{
    public const ushort NFTA_SOCKET_KEY = 1, NFTA_SOCKET_DREG = 2, NFTA_SOCKET_LEVEL = 3;
    public override string Name => "socket";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_SOCKET_KEY, NFTA_SOCKET_DREG, NFTA_SOCKET_LEVEL];

    public static SocketExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var key = p.U32Be(NFTA_SOCKET_KEY) ?? throw p.Missing("NFTA_SOCKET_KEY");
        var dReg = ExprParse.Reg(ref p, NFTA_SOCKET_DREG) ?? throw p.Missing("NFTA_SOCKET_DREG");
        var level = p.U32Be(NFTA_SOCKET_LEVEL);
        return new SocketExpr(key, dReg, level) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_SOCKET_KEY => U32(w, raw, Key),
        NFTA_SOCKET_DREG => U32(w, raw, DReg),
        NFTA_SOCKET_LEVEL => U32(w, raw, Level),
        _ => false,
    };
}
