using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;
using NftSetElement = Nft.Bytecode.Objects.SetElement;

namespace Nft.Lifter;

/// <summary>
/// Per-element statements (NFTA_SET_EXPR(ESSIONS) of a set, NFTA_SET_ELEM_EXPR(ESSIONS) of its elements;
/// the engine gives every element added a copy of the set's, as nft_set_elem_expr_clone does).
/// nft_lookup_eval runs a found element's statements in order (nft_set_elem_update_expr) after a positive
/// lookup or a verdict map's, and stops at the first that breaks (a `limit` beyond its rate, a `quota`
/// beyond its bytes): the rule then breaks too, a verdict map's verdict included. `!= @s` runs none (a
/// found element breaks, a missing one has no statements). The BPF backend runs `counter`, `quota` and
/// `limit`, each in a state slot of its own named by set, element key and position, so an element keeps
/// its state through recompiles and restarts; `connlimit` and `last` stay in the kernel.
/// </summary>
internal static class ElementStatements
{
    /// <summary>Why the set's statements (the template its elements get) cannot run in BPF, or null.</summary>
    public static string? Refusal(SourceSet set, SetUseKind kind)
    {
        var exprs = Of(set.Set.Expr, set.Set.Expressions);
        if (exprs.Count == 0) return null;
        if (kind == SetUseKind.Objects) return $"object map '{set.Name}' has per-element statements, which bpfilter-nft does not support";
        return Unsupported(exprs) is { } what ? $"set '{set.Name}' has per-element {what}" : null;
    }

    /// <summary>Why an element's own statements cannot run in BPF (as "an element with ..."), or null.</summary>
    public static string? ElementRefusal(NftSetElement e, bool objects)
    {
        var exprs = Of(e.Expr, e.Expressions);
        if (exprs.Count == 0) return null;
        if (objects) return "an element with statements, which bpfilter-nft does not support";
        return Unsupported(exprs) is { } what ? $"an element with {what}" : null;
    }

    /// <summary>
    /// The element's statements, in its order, each with the state slot of its set, key and position
    /// (stable while the element stays in the set), or none.
    /// </summary>
    public static ValueList<Statement> Of(TableContext table, string set, NftSetElement e, Func<string, Exception> refuse)
    {
        var exprs = Of(e.Expr, e.Expressions);
        if (exprs.Count == 0) return default;
        var lifted = new List<Statement>();
        for (var i = 0; i < exprs.Count; i++)
        {
            var key = StatefulKey.Element(table.Family, table.Name, set, e.Key, e.KeyEnd, i);
            lifted.Add(exprs[i] switch
            {
                CounterExpr => new CounterStatement(table.Counters.GetOrAdd(CounterKey.Element(table.Family, table.Name, set, e.Key, e.KeyEnd))),
                QuotaExpr q => QuotaStatements.Lift(q, table.Counters.Quotas.GetOrAdd(key), refuse),
                LimitExpr l => LimitStatements.Lift(l, table.Counters.Limits.GetOrAdd(key), refuse),
                var x => throw refuse($"`{x.Name}` runs only in the kernel"),
            });
        }
        return lifted.ToValueList();
    }

    /// <summary>True when the element carries statements.</summary>
    public static bool Has(NftSetElement e) => Of(e.Expr, e.Expressions).Count > 0;

    /// <summary>
    /// What BPF cannot run: `connlimit` counts the connections of each element in nf_conncount's lists, which
    /// only the kernel keeps (it walks conntrack for every packet); `last` (a timestamp per element, which nft
    /// 1.0.6 cannot declare per element) and anything else are not compiled. Two counters would share one slot.
    /// </summary>
    static string? Unsupported(IReadOnlyList<Expression> exprs)
    {
        if (exprs.FirstOrDefault(x => x is ConnlimitExpr) is not null)
            return "`ct count` (connlimit: nf_conncount's per-element connection lists live only in the kernel)";
        if (exprs.FirstOrDefault(x => x is not (CounterExpr or QuotaExpr or LimitExpr)) is { } other)
            return $"`{other.Name}`, which bpfilter-nft runs only in the kernel";
        return exprs.Count(x => x is CounterExpr) > 1 ? "two counters, which bpfilter-nft runs only in the kernel" : null;
    }

    static IReadOnlyList<Expression> Of(Expression? one, IReadOnlyList<Expression>? list) => one != null ? [one] : list ?? [];
}
