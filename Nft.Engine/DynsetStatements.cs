using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// A dynset's own statements (`add @s { ip daddr counter }`) against its set's (`set s { ...; counter; }`), as
/// nft_dynset_init checks them and nft_dynset_dump shows them. The rule keeps its own: they are what the elements it
/// makes are cloned from (a quota of the rule's size, not the set's), but a set with statements dumps none of the
/// rule's, so `nft list` shows `add @s { ip daddr }`.
/// </summary>
internal static class DynsetStatements
{
    /// <summary>The set's statements, as set->exprs holds them.</summary>
    public static IReadOnlyList<Expression> Of(Set s) => s.Expr is { } x ? [x] : s.Expressions ?? [];

    /// <summary>nft_dynset_init's refusal of the rule's statements on this set, if any.</summary>
    public static int? Refusal(DynsetExpr d, SetRecord set)
    {
        if (d.Expr == null && d.Expressions == null) return null;
        if ((set.Flags & (uint)NftSetFlags.Eval) == 0) return Errno.EINVAL;
        var setExprs = Of(set.Set);
        if (d.Expr != null)
            return setExprs.Count > 1 || setExprs.Count == 1 && !SameOps(d.Expr, setExprs[0]) ? Errno.EOPNOTSUPP : null;
        // NFTA_DYNSET_EXPRESSIONS only with NFT_DYNSET_F_EXPR
        if (((d.Flags ?? 0) & DynsetExpr.NFT_DYNSET_F_EXPR) == 0) return Errno.EINVAL;
        if (setExprs.Count == 0) return null;
        var own = d.Expressions!;
        for (int i = 0; i < own.Count; i++)
        {
            if (i >= setExprs.Count) return Errno.EINVAL;
            if (!SameOps(own[i], setExprs[i])) return Errno.EOPNOTSUPP;
        }
        return own.Count != setExprs.Count ? Errno.EOPNOTSUPP : null;
    }

    /// <summary>The kernel compares expr->ops: the type, and for a limit its packet or byte variant.</summary>
    static bool SameOps(Expression a, Expression b) => a.Name == b.Name
        && (a is not LimitExpr la || b is LimitExpr lb && IsBytes(la) == IsBytes(lb));

    static bool IsBytes(LimitExpr l) => (l.Type ?? LimitExpr.TypePackets) == LimitExpr.TypeBytes;

    /// <summary>
    /// nft_dynset_dump: the rule's statements only when its set has none (the set's are the listing's), and of the
    /// flags only NFT_DYNSET_F_INV (NFT_DYNSET_F_EXPR is not dumped).
    /// </summary>
    public static IReadOnlyList<Expression> Dumped(TableRecord t, IReadOnlyList<Expression> exprs)
    {
        Expression[]? dumped = null;
        for (int i = 0; i < exprs.Count; i++)
        {
            if (exprs[i] is not DynsetExpr d) continue;
            var hide = (d.Expr != null || d.Expressions != null) && t.FindSet(d.SetName) is { } s && Of(s.Set).Count > 0;
            uint flags = (d.Flags ?? 0) & DynsetExpr.NFT_DYNSET_F_INV;
            if (!hide && flags == d.Flags) continue;
            dumped ??= exprs.ToArray();
            dumped[i] = hide ? d with { Expr = null, Expressions = null, Flags = flags } : d with { Flags = flags };
        }
        return dumped ?? exprs;
    }
}
