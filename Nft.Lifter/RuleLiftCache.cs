using System.Runtime.CompilerServices;
using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;
using NftRule = Nft.Bytecode.Objects.Rule;

namespace Nft.Lifter;

/// <summary>
/// Lifted rules kept from one lift to the next, so that a commit that adds one rule to a chain of
/// thousands lifts one rule. Only rules whose lift reads nothing from their table are kept: payload,
/// meta loads, immediates other than jump/goto, bitwise, byteorder, cmp, range and counter. Such a lift
/// depends only on the expressions, the family, table, chain and handle (the counter's key and the
/// rule's origin) and whether the chain's packets start at the link layer; a rule that reads a set, an
/// object or a chain, or notes ct or a mark to its table, is lifted every time. The expressions are
/// matched by reference: the engine keeps a committed rule's decoded expressions (immutable) until the
/// rule is deleted or replaced. A kept counter is used again only when the counter slots still give its
/// key the same slot (an aborted transaction may have freed it). Each lift keeps only the rules it met,
/// so the cache holds at most the last ruleset lifted. Not thread-safe: the daemon lifts under its lock.
/// </summary>
public sealed class RuleLiftCache
{
    readonly record struct Key(IReadOnlyList<Expression> Expressions, byte Family, string Table, string Chain, ulong Handle, bool LinkLayer);

    /// <summary>Keys equal when their expressions are the same list object and the rest is equal.</summary>
    sealed class ByReference : IEqualityComparer<Key>
    {
        public bool Equals(Key a, Key b) => ReferenceEquals(a.Expressions, b.Expressions) && a.Family == b.Family && a.Handle == b.Handle
            && a.LinkLayer == b.LinkLayer && a.Table == b.Table && a.Chain == b.Chain;

        public int GetHashCode(Key k) => HashCode.Combine(RuntimeHelpers.GetHashCode(k.Expressions), k.Handle, k.Chain);
    }

    static readonly ByReference Comparer = new();
    Dictionary<Key, Rule> _previous = new(Comparer), _current = new(Comparer);

    /// <summary>Hits of the lift in progress (for the daemon's log).</summary>
    public int Hits { get; internal set; }

    /// <summary>The last lift, extended instead of lifted again when rules were only appended to its base chains since.</summary>
    internal PreviousLift Previous { get; } = new();

    /// <summary>Rules the last lift appended onto the lift before it (0: it lifted the ruleset whole).</summary>
    public int Appended { get; internal set; }

    /// <summary>Starts a lift: what the last lift met stays available, the rest is dropped at <see cref="EndLift"/>.</summary>
    internal void BeginLift()
    {
        Appended = 0;
        _current = new Dictionary<Key, Rule>(_previous.Count, Comparer);
        Hits = 0;
    }

    internal void EndLift() => _previous = _current;

    /// <summary>The rule as the last lift gave it, when it can be reused as it is.</summary>
    internal Rule? Find(TableContext table, string chain, bool linkLayer, NftRule rule)
    {
        if (rule.Expressions is not { } exprs || rule.Handle is not ulong handle) return null;
        var key = new Key(exprs, table.Family, table.Name, chain, handle, linkLayer);
        if (!_previous.TryGetValue(key, out var lifted) && !_current.TryGetValue(key, out lifted)) return null;
        // its counters' slots are still theirs (each counter expression has its own, see CounterKey.OfRule)
        if (!lifted.CounterIds.SequenceEqual(CounterKey.OfRule(table.Family, table.Name, chain, handle, exprs).Select(c => table.Counters.GetOrAdd(c.Key)))) return null;
        _current[key] = lifted;
        Hits++;
        return lifted;
    }

    /// <summary>Keeps a rule just lifted when its lift read nothing from its table.</summary>
    internal void Add(TableContext table, string chain, bool linkLayer, NftRule rule, Rule lifted)
    {
        if (rule.Expressions is not { } exprs || rule.Handle is not ulong handle || !exprs.All(ReadsNoTable)) return;
        _current[new Key(exprs, table.Family, table.Name, chain, handle, linkLayer)] = lifted;
    }

    internal static bool ReadsNoTable(Expression e) => e switch
    {
        PayloadExpr or BitwiseExpr or ByteorderExpr or CmpExpr or RangeExpr or CounterExpr => true,
        MetaExpr m => !m.IsSet,
        ImmediateExpr i => i.Verdict is not { IsJumpOrGoto: true },
        _ => false,
    };
}
