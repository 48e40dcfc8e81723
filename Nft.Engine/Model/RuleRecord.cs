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

    /// <summary>
    /// Forms made from <see cref="Rule"/> once and handed out again (the backend's view, the state file's message),
    /// each with the rule object it was made from: a copy made with <c>with</c> shares this box and finds a form of
    /// another rule object a miss. Kept here, not in weak tables keyed by the record: every garbage collection scans
    /// every entry of those, and a ruleset of 100,000 rules held 200,000.
    /// </summary>
    internal readonly RuleForms Forms = new();

    // the forms are a cache: equal records are those of equal rules and counters, as without them
    public bool Equals(RuleRecord? other) =>
        ReferenceEquals(this, other) || other is not null && EqualityComparer<Rule>.Default.Equals(Rule, other.Rule) && Counters.Equals(other.Counters);

    public override int GetHashCode() => HashCode.Combine(Rule, Counters);
}

/// <summary>The forms of a rule record's rule object (<see cref="RuleRecord.Forms"/>); each is replaced whole, never changed.</summary>
internal sealed class RuleForms
{
    /// <summary>The rule with its family, table and chain filled in, as the backend's view hands it out.</summary>
    public RuleView? View;
    /// <summary>The rule's NEWRULE message for the state file.</summary>
    public EncodedRule? Message;
}

/// <summary>A rule object's view with its names filled in.</summary>
internal sealed record RuleView(Rule Of, Rule View);

/// <summary>A rule object's NEWRULE message encoded for one family.</summary>
internal sealed record EncodedRule(Rule Of, byte Family, byte[] Message);

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
