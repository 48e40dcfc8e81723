using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>Expression names the kernel knows (nft_expr_type_get); anything else is ENOENT.</summary>
internal static class RuleExpressions
{
    public static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "bitwise", "byteorder", "cmp", "immediate", "lookup", "payload", "dynset", "range", "meta", "rt",
        "exthdr", "last", "counter", "objref", "inner", "ct", "limit", "log", "masq", "nat", "notrack",
        "numgen", "osf", "queue", "quota", "redir", "reject", "fib", "fwd", "dup", "hash", "socket",
        "synproxy", "tproxy", "tunnel", "xfrm", "connlimit", "flow_offload", "match", "target",
    };

    /// <summary>An immediate jump/goto re-aimed at a renamed chain.</summary>
    public static ExprRecord Retarget(ExprRecord e, string to)
    {
        var data = AttrList.Parse(e.Data, 0);
        byte[] verdict = ExprCanonicalizer.VerdictNest(e.Verdict ?? 0, to);
        var canon = ExprCanonicalizer.Canonical("immediate", data, t => t == 2 ? verdict : null);
        return e with { Data = canon, ChainTarget = to };
    }
}
