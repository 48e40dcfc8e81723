using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;

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
    public static Expression Retarget(Expression e, string to) =>
        e is ImmediateExpr { Data: VerdictData v } i ? i with { Data = new VerdictData(v.Verdict with { Chain = to }) } : e;
}
