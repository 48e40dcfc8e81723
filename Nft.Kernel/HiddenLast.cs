using Nft.Bytecode.Expressions;

namespace Nft.Kernel;

/// <summary>
/// The `last` expressions the kernel copy of a rule carries and the caller's rule does not: one just before each
/// expression that may run a limit (a `limit`, an `objref` or object map, a set lookup or dynset, whose elements may
/// carry one). The kernel lists no token state of a limit (nft_limit_dump: rate, unit, burst, flags), but nft_last
/// lists how long ago a packet last reached it (NFTA_LAST_MSECS): a bucket idle for as long as it takes to refill is
/// full, so it can be given to BPF as it is. They shift the kernel copy's expression indexes: <see cref="Align"/>
/// maps them back, so counters and listings are in the caller's indexes and never show them.
/// </summary>
public static class HiddenLast
{
    /// <summary>Whether the kernel copy has a hidden `last` just before <paramref name="e"/>.</summary>
    public static bool Precedes(Expression e) => e is LimitExpr or ObjRefExpr or LookupExpr or DynsetExpr;

    /// <summary>
    /// The most expressions a rule may have for its copy to get hidden `last`s. nf_tables refuses a rule of
    /// NFT_RULE_MAXEXPRS (128) expressions or of 4096 bytes of expression data (nf_tables_newrule); a `last` takes 16
    /// of those bytes and no expression more than 128, so a rule of at most 28 stays within both with one before each
    /// (28 * 128 + 28 * 16 = 4032): a rule the kernel accepts is never refused for them. A longer rule goes as written,
    /// and its limits are never known full (<c>KernelLimitIdle</c>): its chain stays in the kernel rather than guess.
    /// So does a rule with an xtables `match` or `target` (nft_compat, iptables-nft): it holds the extension's own info
    /// in the rule, above 128 bytes (measured: 23 `-m string` matches and a limit load, 24 are refused with ENOSPC, so
    /// each takes about 168 of the 4096 bytes).
    /// </summary>
    public const int MaxCallerExpressions = 28;

    /// <summary>Whether the kernel copy of <paramref name="caller"/> carries hidden `last`s (see <see cref="MaxCallerExpressions"/>).</summary>
    public static bool Fits(IReadOnlyList<Expression> caller)
    {
        if (caller.Count > MaxCallerExpressions) return false;
        foreach (var e in caller)
            if (e is MatchExpr or TargetExpr) return false;
        return true;
    }

    /// <summary>The kernel copy of a rule's expressions.</summary>
    public static List<Expression> Insert(IReadOnlyList<Expression> caller)
    {
        if (!Fits(caller)) return [.. caller];
        var kernel = new List<Expression>(caller.Count + 2);
        foreach (var e in caller)
        {
            if (Precedes(e)) kernel.Add(new LastExpr());
            kernel.Add(e);
        }
        return kernel;
    }

    /// <summary>
    /// Per expression of the kernel's rule, the caller's index of it, or of the expression a hidden `last` precedes
    /// (<c>Hidden</c>). A kernel rule placed without them (by an earlier daemon) aligns one to one.
    /// </summary>
    public static (int Index, bool Hidden)[] Align(IReadOnlyList<Expression> caller, IReadOnlyList<Expression> kernel)
    {
        var map = new (int, bool)[kernel.Count];
        int k = 0;
        for (int i = 0; i < caller.Count && k < kernel.Count; i++)
        {
            if (Precedes(caller[i]) && kernel[k] is LastExpr && caller[i] is not LastExpr && k + 1 < kernel.Count && kernel.Count - k > caller.Count - i)
                map[k++] = (i, true);
            if (k < kernel.Count) map[k++] = (i, false);
        }
        for (; k < kernel.Count; k++) map[k] = (-1, false);
        return map;
    }
}
