using System.Collections.Immutable;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// A rule: the Nft.Bytecode rule as the kernel dumps it (handle, typed expressions in their dump
/// form, nft's user data; table and chain are filled in when it is written out), and the runtime
/// state of its counter and quota expressions, by expression index.
/// </summary>
public sealed record RuleRecord(Rule Rule, ImmutableArray<CounterCell?> Counters)
{
    public ulong Handle => Rule.Handle ?? 0;
    public IReadOnlyList<Expression> Expressions => Rule.Expressions ?? [];
}

/// <summary>What an expression refers to, for the kernel's bookkeeping (use counts, EBUSY, jump validation).</summary>
public static class ExprRefs
{
    /// <summary>Set the expression is bound to (lookup, dynset, objref map), by name.</summary>
    public static string? SetName(Expression e) => e switch
    {
        LookupExpr l => l.Set,
        DynsetExpr d => d.SetName,
        ObjRefExpr { IsMap: true } o => o.SetName,
        _ => null,
    };

    /// <summary>Target of a jump/goto verdict (immediate).</summary>
    public static string? ChainTarget(Expression e) =>
        e is ImmediateExpr { Data: VerdictData { Verdict: { IsJumpOrGoto: true } v } } ? v.Chain : null;

    /// <summary>Named object referenced by an objref immediate: (name, type).</summary>
    public static (string Name, uint Type)? Object(Expression e) =>
        e is ObjRefExpr { IsMap: false, ImmName: { } n } o ? (n, o.ImmType ?? 0) : null;
}
