using Nft.Bytecode.Expressions;

namespace Nft.Bytecode.Objects;

/// <summary>Replaces expressions of a table's rules and named objects' state (NFTA_OBJ_DATA), e.g. to preset or zero counters and quotas.</summary>
public static class SourceTableExpressions
{
    /// <summary>
    /// <paramref name="t"/> with each rule expression <paramref name="rule"/> gives anew (given the chain, the rule and
    /// the expression's index; null keeps it) and each named object's state <paramref name="obj"/> gives anew replaced.
    /// What nothing replaces stays the same record (chains, rules, objects, their lists): a rewrite walks, it copies only
    /// what changes.
    /// </summary>
    public static SourceTable WithExpressions(this SourceTable t, Func<SourceChain, Rule, int, Expression, Expression?> rule,
        Func<NftObject, Expression?>? obj = null)
    {
        var chains = Replaced(t.Chains, c => Replaced(c.Rules, r => WithExpressions(c, r, rule)) is { } rules ? c with { Rules = rules } : null);
        var objects = obj == null || t.Objects == null ? null : Replaced(t.Objects, o => obj(o) is { } d ? o with { Data = d } : null);
        return chains == null && objects == null ? t : t with { Chains = chains ?? t.Chains, Objects = objects ?? t.Objects };
    }

    static Rule? WithExpressions(SourceChain c, Rule r, Func<SourceChain, Rule, int, Expression, Expression?> rule)
    {
        if (r.Expressions is not { } exprs) return null;
        Expression[]? replaced = null;
        for (int i = 0; i < exprs.Count; i++)
            if (rule(c, r, i, exprs[i]) is { } x) (replaced ??= exprs.ToArray())[i] = x;
        return replaced == null ? null : r with { Expressions = replaced };
    }

    /// <summary><paramref name="items"/> with those <paramref name="replace"/> gives anew replaced; null when it gives none.</summary>
    static IReadOnlyList<T>? Replaced<T>(IReadOnlyList<T> items, Func<T, T?> replace) where T : class
    {
        T[]? list = null;
        for (int i = 0; i < items.Count; i++)
            if (replace(items[i]) is { } x) (list ??= items.ToArray())[i] = x;
        return list;
    }
}
