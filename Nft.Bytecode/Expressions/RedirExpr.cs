using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>redir: destination NAT to the local machine, optionally to a port range held in registers.</summary>
public sealed record RedirExpr(uint? RegProtoMin = null, uint? RegProtoMax = null, uint? Flags = null) : AttributeExpression
{
    public const ushort NFTA_REDIR_REG_PROTO_MIN = 1, NFTA_REDIR_REG_PROTO_MAX = 2, NFTA_REDIR_FLAGS = 3;
    public override string Name => "redir";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_REDIR_REG_PROTO_MIN, NFTA_REDIR_REG_PROTO_MAX, NFTA_REDIR_FLAGS];

    public static RedirExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var regProtoMin = ExprParse.Reg(ref p, NFTA_REDIR_REG_PROTO_MIN);
        var regProtoMax = ExprParse.Reg(ref p, NFTA_REDIR_REG_PROTO_MAX);
        var flags = p.U32Be(NFTA_REDIR_FLAGS);
        return new RedirExpr(regProtoMin, regProtoMax, flags) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_REDIR_REG_PROTO_MIN => U32(w, raw, RegProtoMin),
        NFTA_REDIR_REG_PROTO_MAX => U32(w, raw, RegProtoMax),
        NFTA_REDIR_FLAGS => U32(w, raw, Flags),
        _ => false,
    };
}
