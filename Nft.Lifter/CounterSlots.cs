namespace Nft.Lifter;

/// <summary>Names the counter of one rule: the data plane counts it in one slot.</summary>
public readonly record struct CounterKey(byte Family, string Table, string Chain, ulong RuleHandle)
{
    public override string ToString() => $"{FamilyNames.Of(Family)} {Table} {Chain} handle {RuleHandle}";
}

/// <summary>
/// Hands out stable counter slot ids: a rule keeps its slot for as long as the same instance
/// lifts it, across transactions, so the daemon can read its totals back by (table, chain, handle)
/// after recompiles. Slots of rules that disappeared are reused by later rules after
/// <see cref="Retain"/>. Not thread-safe: the daemon lifts under its one lock.
/// </summary>
public sealed class CounterSlots
{
    readonly Dictionary<CounterKey, ulong> _slots = new();
    readonly SortedSet<ulong> _free = new();
    ulong _next;

    public IReadOnlyDictionary<CounterKey, ulong> Slots => _slots;

    public ulong GetOrAdd(CounterKey key)
    {
        if (_slots.TryGetValue(key, out var id)) return id;
        if (_free.Count > 0)
        {
            id = _free.Min;
            _free.Remove(id);
        }
        else id = _next++;
        _slots[key] = id;
        return id;
    }

    public bool TryGet(CounterKey key, out ulong slot) => _slots.TryGetValue(key, out slot);

    /// <summary>Frees the slots of every key not in <paramref name="live"/> (after a successful lift of the whole ruleset).</summary>
    public void Retain(IEnumerable<CounterKey> live)
    {
        var keep = live.ToHashSet();
        foreach (var k in _slots.Keys.Where(k => !keep.Contains(k)).ToList())
        {
            _free.Add(_slots[k]);
            _slots.Remove(k);
        }
    }
}
