using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;
using NftSetElement = Nft.Bytecode.Objects.SetElement;

namespace Nft.Lifter;

/// <summary>
/// Per-element statements (NFTA_SET_EXPR(ESSIONS) of a set, NFTA_SET_ELEM_EXPR(ESSIONS) of its elements).
/// nft_lookup_eval runs an element's statements when a lookup finds it (nft_set_elem_update_expr): a
/// `counter` counts every packet a positive lookup or a verdict map matched, and nothing counts for
/// `!= @s` (a found element breaks, a missing one has no statements). The BPF backend runs one counter
/// per element, counted in a slot of its own; quota, limit, connlimit and last per element stay in the kernel.
/// </summary>
internal static class ElementCounters
{
    /// <summary>Why the set's statements (the template its elements get) cannot run in BPF, or null.</summary>
    public static string? Refusal(SourceSet set, SetUseKind kind)
    {
        var exprs = Of(set.Set.Expr, set.Set.Expressions);
        if (exprs.Count == 0) return null;
        if (kind == SetUseKind.Objects) return $"object map '{set.Name}' has per-element statements, which bpfilter-nft does not support";
        return Unsupported(exprs) is { } what ? $"set '{set.Name}' has per-element {what}, which bpfilter-nft runs only in the kernel" : null;
    }

    /// <summary>Why an element's own statements cannot run in BPF (as "an element with ..."), or null.</summary>
    public static string? ElementRefusal(NftSetElement e, bool objects)
    {
        var exprs = Of(e.Expr, e.Expressions);
        if (exprs.Count == 0) return null;
        if (objects) return "an element with statements";
        return Unsupported(exprs) is { } what ? $"an element with {what}" : null;
    }

    /// <summary>
    /// The element's counter as a statement counting in the element's own slot (stable while the element
    /// stays in the set, so its count survives recompiles and restarts), or none.
    /// </summary>
    public static ValueList<Statement> Of(TableContext table, string set, NftSetElement e) =>
        Of(e.Expr, e.Expressions).Count == 0
            ? default
            : ValueList.Of<Statement>(new CounterStatement(table.Counters.GetOrAdd(CounterKey.Element(table.Family, table.Name, set, e.Key, e.KeyEnd))));

    /// <summary>True when the element carries statements.</summary>
    public static bool Has(NftSetElement e) => Of(e.Expr, e.Expressions).Count > 0;

    static string? Unsupported(IReadOnlyList<Expression> exprs)
    {
        if (exprs.FirstOrDefault(x => x is not CounterExpr) is { } other) return $"`{other.Name}`";
        return exprs.Count > 1 ? "statements beyond one counter" : null;
    }

    static IReadOnlyList<Expression> Of(Expression? one, IReadOnlyList<Expression>? list) => one != null ? [one] : list ?? [];
}
