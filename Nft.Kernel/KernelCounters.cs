using Nft.Bytecode.Expressions;

namespace Nft.Kernel;

/// <summary>
/// A rule's counter expression as the kernel counts it, addressed by the caller's (emulated) rule
/// handle and the expression's index in the rule; for a quota expression, Bytes is what it consumed
/// since it was placed (as the kernel dumps it, capped at the quota) and Packets is 0.
/// </summary>
public sealed record RuleCounter(byte Family, string Table, string Chain, ulong RuleHandle, int ExpressionIndex, ulong Packets, ulong Bytes);

/// <summary>
/// A hidden `last` of the kernel copy (<see cref="HiddenLast"/>): the caller's rule and index of the expression it
/// precedes, and how long ago (ms, in jiffies) a packet last reached it; null when none has since it was placed.
/// <paramref name="Unwatched"/>: the kernel's rule has no hidden `last` before that expression (too long for them, or
/// placed by an earlier daemon), so when a packet reached it is not known.
/// </summary>
public sealed record LastReached(byte Family, string Table, string Chain, ulong RuleHandle, int ExpressionIndex, Expression Before, ulong? AgoMs,
    bool Unwatched = false);

/// <summary>
/// A named stateful object's state as the kernel holds it (counter values, quota consumption);
/// QuotaStart is the `used` a quota was placed with (the caller holds it), as for rule quotas.
/// </summary>
public sealed record ObjectState(byte Family, string Table, string Name, uint Type, Expression? Data, ulong QuotaStart = 0)
{
    public ulong? Packets => (Data as CounterExpr)?.Packets;
    public ulong? Bytes => (Data as CounterExpr)?.Bytes;
    public ulong? QuotaConsumed => (Data as QuotaExpr)?.Consumed;

    /// <summary>A quota's bytes consumed since it was placed.</summary>
    public ulong? QuotaConsumedSincePlaced => QuotaConsumed is { } c ? (c >= QuotaStart ? c - QuotaStart : 0) : null;
}

/// <summary>Everything <see cref="KernelPlacement.ReadCounters"/> reads: rule counters and named object states.</summary>
public sealed record KernelCounters(IReadOnlyList<RuleCounter> Rules, IReadOnlyList<ObjectState> Objects)
{
    public RuleCounter? Rule(byte family, string table, ulong ruleHandle, int expressionIndex) =>
        Rules.FirstOrDefault(r => r.Family == family && r.Table == table && r.RuleHandle == ruleHandle && r.ExpressionIndex == expressionIndex);

    /// <summary>The object of <paramref name="type"/> named <paramref name="name"/>: nf_tables keys objects by table, type and name.</summary>
    public ObjectState? Object(byte family, string table, uint type, string name) =>
        Objects.FirstOrDefault(o => o.Family == family && o.Table == table && o.Type == type && o.Name == name);
}
