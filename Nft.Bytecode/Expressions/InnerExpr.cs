using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>inner: runs the payload or meta expression Expr on the inner headers of a tunnel (Type, header size, Flags).</summary>
public sealed record InnerExpr(uint Type, uint Flags, uint HdrSize, Expression Expr, uint? Num = null) : AttributeExpression
{
    public const ushort NFTA_INNER_NUM = 1, NFTA_INNER_TYPE = 2, NFTA_INNER_FLAGS = 3, NFTA_INNER_HDRSIZE = 4, NFTA_INNER_EXPR = 5;
    public override string Name => "inner";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_INNER_NUM, NFTA_INNER_TYPE, NFTA_INNER_FLAGS, NFTA_INNER_HDRSIZE, NFTA_INNER_EXPR];

    public static InnerExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var num = p.U32Be(NFTA_INNER_NUM);
        var @type = p.U32Be(NFTA_INNER_TYPE) ?? throw p.Missing("NFTA_INNER_TYPE");
        var flags = p.U32Be(NFTA_INNER_FLAGS) ?? throw p.Missing("NFTA_INNER_FLAGS");
        var hdrSize = p.U32Be(NFTA_INNER_HDRSIZE) ?? throw p.Missing("NFTA_INNER_HDRSIZE");
        var expr = ExprParse.Expr(ref p, NFTA_INNER_EXPR) ?? throw p.Missing("NFTA_INNER_EXPR");
        return new InnerExpr(@type, flags, hdrSize, expr, num) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_INNER_NUM => U32(w, raw, Num),
        NFTA_INNER_TYPE => U32(w, raw, Type),
        NFTA_INNER_FLAGS => U32(w, raw, Flags),
        NFTA_INNER_HDRSIZE => U32(w, raw, HdrSize),
        NFTA_INNER_EXPR => Exp(w, raw, Expr, f),
        _ => false,
    };

    public bool Equals(InnerExpr? o) => o is not null && Equals(Num, o.Num) && Equals(Type, o.Type) && Equals(Flags, o.Flags) && Equals(HdrSize, o.HdrSize) && Equals(Expr, o.Expr) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Name, Num);
}
