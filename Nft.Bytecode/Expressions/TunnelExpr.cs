using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>tunnel: loads tunnel metadata (path or id) into DReg, for rx/tx Mode.</summary>
public sealed record TunnelExpr(uint Key, uint DReg, uint? Mode = null) : AttributeExpression
{
    public const ushort NFTA_TUNNEL_KEY = 1, NFTA_TUNNEL_DREG = 2, NFTA_TUNNEL_MODE = 3;
    public override string Name => "tunnel";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_TUNNEL_KEY, NFTA_TUNNEL_DREG, NFTA_TUNNEL_MODE];

    public static TunnelExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var key = p.U32Be(NFTA_TUNNEL_KEY) ?? throw p.Missing("NFTA_TUNNEL_KEY");
        var dReg = ExprParse.Reg(ref p, NFTA_TUNNEL_DREG) ?? throw p.Missing("NFTA_TUNNEL_DREG");
        var mode = p.U32Be(NFTA_TUNNEL_MODE);
        return new TunnelExpr(key, dReg, mode) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_TUNNEL_KEY => U32(w, raw, Key),
        NFTA_TUNNEL_DREG => U32(w, raw, DReg),
        NFTA_TUNNEL_MODE => U32(w, raw, Mode),
        _ => false,
    };
}
