using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>
/// The statements an element the packet path adds carries (nft_dynset): the dynset's own (`add @s { ip saddr
/// counter }`, a meter's `{ ip saddr limit rate 10/second }`), else the set's declared ones (`set s { ...; counter; }`),
/// which nft_dynset_init clones for the new elements (nft_set_elem_expr_clone). nft_dynset_eval runs them
/// (nft_set_elem_update_expr) on the element it added or found, for `add` and `update` alike, and the first
/// that breaks breaks the rule. The BPF backend keeps their state in the element's own map value, initialised
/// as nft_counter_clone and nft_quota_clone give it (zero), and a limit's bucket in the set's bucket map (full when
/// made, as nft_limit_clone), so they are lifted without state slots.
/// </summary>
internal static class PacketElementStatements
{
    public static ValueList<Statement> Lift(SourceSet set, DynsetExpr d, Func<string, Exception> refuse)
    {
        IReadOnlyList<Expression> exprs = d.Expr != null ? [d.Expr] : d.Expressions is { Count: > 0 } own ? own
            : set.Set.Expr != null ? [set.Set.Expr] : set.Set.Expressions ?? [];
        if (exprs.Count == 0) return default;
        // the element's value holds either the slots of the control plane's elements or the state of the packet path's
        if (set.Elements.Any(ElementStatements.Has))
            throw refuse($"set '{set.Name}' is updated from the packet path and holds elements the control plane added with " +
                "statements, which bpfilter-nft runs only in the kernel");
        if (exprs.Count > 2) throw refuse($"dynset on set '{set.Name}' with more than the 2 statements nf_tables holds per element");
        if (exprs.Count(x => x is CounterExpr) > 1) throw refuse($"dynset on set '{set.Name}' with two counters per element, which bpfilter-nft runs only in the kernel");
        var lifted = new List<Statement>(exprs.Count);
        foreach (var x in exprs)
            lifted.Add(x switch
            {
                CounterExpr => new CounterStatement(0),
                // a quota given `used` starts from it in the clone too (nft_quota_clone copies consumed)
                QuotaExpr q when (q.Consumed ?? 0) == 0 => QuotaStatements.Lift(q, 0, refuse),
                QuotaExpr => throw refuse($"dynset on set '{set.Name}' with a quota that starts used, which bpfilter-nft runs only in the kernel"),
                // its bucket is the set's bucket map's entry for the element (the backend's ElementBuckets), not a state slot
                LimitExpr l => LimitStatements.Lift(l, 0, refuse),
                ConnlimitExpr => throw refuse($"`ct count` on elements set '{set.Name}' gets from the packet path runs only in the kernel " +
                    "(nf_conncount's per-element connection lists)"),
                _ => throw refuse($"`{x.Name}` on elements set '{set.Name}' gets from the packet path runs only in the kernel"),
            });
        return lifted.ToValueList();
    }
}
