using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// The limits a commit moves from BPF to the kernel's nf_tables whose bucket BPF had not full. The kernel copy of a
/// limit starts full (nft_limit_init) and nothing can set its tokens (NEWRULE, NEWOBJ and NEWSETELEM carry rate, unit,
/// burst and flags only), so such a move lets through packets the kernel, where nothing moves, would not. The move
/// cannot wait (every ruleset the kernel accepts loads): it is named in `bpfilterd explain` instead, for as long as
/// the limit stays in the kernel. The other way (<see cref="KernelLimitIdle"/>), a move waits until the kernel copy's
/// bucket is known full.
/// </summary>
public static class LimitMoves
{
    /// <summary>
    /// Per limit BPF runs now (<paramref name="committed"/>: the committed lift's slots) that <paramref name="kernelTables"/>
    /// take over and the kernel does not hold yet (<paramref name="kernelPlaced"/>), why its move is not exact, when
    /// <paramref name="bucket"/> (refilled tokens and size, ns) is not full. Renewed slots start full on both sides.
    /// </summary>
    public static Dictionary<StatefulKey, string> NotFull(IReadOnlyList<SourceTable> kernelTables, IReadOnlyDictionary<StatefulKey, ulong> committed,
        IReadOnlySet<ulong> renewed, IReadOnlyList<SourceTable> kernelPlaced, Func<ulong, (ulong Tokens, ulong Max)?> bucket)
    {
        var notes = new Dictionary<StatefulKey, string>();
        foreach (var (key, slot) in committed)
        {
            if (renewed.Contains(slot) || !Placed(kernelTables, key) || Placed(kernelPlaced, key)) continue;
            if (bucket(slot) is not { } b || b.Tokens >= b.Max) continue;
            notes[key] = $"{key}: limit moved to the kernel's nf_tables with a full bucket, where BPF's held {b.Tokens / 1_000_000} of {b.Max / 1_000_000} ms (the kernel's tokens cannot be set)";
        }
        return notes;
    }

    /// <summary>The notes of <paramref name="notes"/> whose limit <paramref name="kernelTables"/> still hold.</summary>
    public static Dictionary<StatefulKey, string> Still(IReadOnlyDictionary<StatefulKey, string> notes, IReadOnlyList<SourceTable> kernelTables) =>
        notes.Where(n => Placed(kernelTables, n.Key)).ToDictionary();

    /// <summary>
    /// Whether <paramref name="tables"/> hold the limit: a rule's limit expression, a limit object or a set element (the
    /// element itself, not only its set: the one answer for what the kernel holds before a commit and what a plan gives it).
    /// </summary>
    public static bool Placed(IReadOnlyList<SourceTable> tables, StatefulKey key) => Find(tables, key) != null;

    /// <summary>The limit <paramref name="tables"/> hold under <paramref name="key"/>, or null.</summary>
    public static LimitExpr? Find(IReadOnlyList<SourceTable> tables, StatefulKey key)
    {
        if (tables.FirstOrDefault(t => t.Family == key.Family && t.Name == key.Table) is not { } t) return null;
        if (key.Object is { } name)
            return t.Objects?.FirstOrDefault(o => o.Name == name && o.ObjectType == NftObjectType.Limit)?.Data as LimitExpr;
        if (key.ElementKey is { } element)
        {
            if (t.FindSet(key.Chain ?? "")?.Elements.FirstOrDefault(e => CounterKey.ElementKey(e.Key, e.KeyEnd) == element) is not { } e) return null;
            IReadOnlyList<Expression> statements = e.Expr is { } one ? [one] : e.Expressions ?? [];
            return key.ExpressionIndex < statements.Count ? statements[key.ExpressionIndex] as LimitExpr : null;
        }
        return t.FindChain(key.Chain ?? "")?.Rules.FirstOrDefault(r => r.Handle == key.RuleHandle) is { Expressions: { } x }
            && key.ExpressionIndex < x.Count ? x[key.ExpressionIndex] as LimitExpr : null;
    }
}
