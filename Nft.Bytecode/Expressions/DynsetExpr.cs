using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>dynset: adds, updates or deletes the key in SRegKey (and data in SRegData) in a set from the packet path.</summary>
public sealed record DynsetExpr(string SetName, uint? SetId, uint Op, uint SRegKey, uint? SRegData = null, ulong? Timeout = null,
    uint? Flags = null, Expression? Expr = null, IReadOnlyList<Expression>? Expressions = null) : AttributeExpression
{
    public const ushort NFTA_DYNSET_SET_NAME = 1, NFTA_DYNSET_SET_ID = 2, NFTA_DYNSET_OP = 3, NFTA_DYNSET_SREG_KEY = 4,
        NFTA_DYNSET_SREG_DATA = 5, NFTA_DYNSET_TIMEOUT = 6, NFTA_DYNSET_EXPR = 7, NFTA_DYNSET_PAD = 8, NFTA_DYNSET_FLAGS = 9,
        NFTA_DYNSET_EXPRESSIONS = 10;
    public const uint OpAdd = 0, OpUpdate = 1, OpDelete = 2;
    public const uint NFT_DYNSET_F_INV = 1, NFT_DYNSET_F_EXPR = 2;
    public override string Name => "dynset";

    /// <summary>
    /// The engine's note, not on the wire: nft_dynset_init gave the rule's element template no NFT_SET_EXT_TIMEOUT (the
    /// set has `flags timeout`, the rule no timeout of its own and the set had no default when the rule was made), so
    /// the rule's new elements never expire even after the set gets a default. The state file keeps it.
    /// </summary>
    public bool ElementsNeverExpire { get; init; }

    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_DYNSET_SREG_KEY, NFTA_DYNSET_SREG_DATA, NFTA_DYNSET_OP,
        NFTA_DYNSET_SET_NAME, NFTA_DYNSET_TIMEOUT, NFTA_DYNSET_EXPR, NFTA_DYNSET_EXPRESSIONS, NFTA_DYNSET_FLAGS, NFTA_DYNSET_SET_ID];

    public static DynsetExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var name = p.Str(NFTA_DYNSET_SET_NAME, NftLimits.SetNameMax) ?? throw p.Missing("NFTA_DYNSET_SET_NAME");
        var setId = p.U32Be(NFTA_DYNSET_SET_ID);
        var op = p.U32Be(NFTA_DYNSET_OP) ?? throw p.Missing("NFTA_DYNSET_OP");
        if (op > OpDelete) throw ExprParse.NotSupported(ref p, $"dynset operation {op}");
        var key = ExprParse.ReqReg(ref p, NFTA_DYNSET_SREG_KEY, "NFTA_DYNSET_SREG_KEY");
        var sdata = ExprParse.Reg(ref p, NFTA_DYNSET_SREG_DATA);
        var timeout = p.U64Be(NFTA_DYNSET_TIMEOUT);
        var flags = p.U32Be(NFTA_DYNSET_FLAGS);
        if (flags is { } fl && (fl & ~(NFT_DYNSET_F_INV | NFT_DYNSET_F_EXPR)) != 0) throw ExprParse.NotSupported(ref p, $"dynset flags 0x{fl:x}");
        var expr = ExprParse.Expr(ref p, NFTA_DYNSET_EXPR);
        var exprs = ExprParse.Exprs(ref p, NFTA_DYNSET_EXPRESSIONS);
        return new DynsetExpr(name, setId, op, key, sdata, timeout, flags, expr, exprs) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_DYNSET_SET_NAME => Str(w, raw, SetName),
        NFTA_DYNSET_SET_ID => U32(w, raw, SetId),
        NFTA_DYNSET_OP => U32(w, raw, Op),
        NFTA_DYNSET_SREG_KEY => U32(w, raw, SRegKey),
        NFTA_DYNSET_SREG_DATA => U32(w, raw, SRegData),
        NFTA_DYNSET_TIMEOUT => U64(w, raw, Timeout),
        NFTA_DYNSET_FLAGS => U32(w, raw, Flags),
        NFTA_DYNSET_EXPR => Exp(w, raw, Expr, f),
        NFTA_DYNSET_EXPRESSIONS => Exps(w, raw, Expressions, f),
        _ => false,
    };

    public bool Equals(DynsetExpr? o) => o is not null && SetName == o.SetName && SetId == o.SetId && Op == o.Op && SRegKey == o.SRegKey
        && SRegData == o.SRegData && Timeout == o.Timeout && Flags == o.Flags && Equals(Expr, o.Expr)
        && Bin.Eq(Expressions, o.Expressions) && Equals(Layout, o.Layout) && ElementsNeverExpire == o.ElementsNeverExpire;
    public override int GetHashCode() => HashCode.Combine(SetName, Op, SRegKey);
}
