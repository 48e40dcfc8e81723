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

    /// <summary>
    /// Takes the assignment an earlier process made (keys with their slot ids, distinct), so that the same
    /// ruleset compiles to the same programs and a restarted daemon can adopt the pinned ones with their
    /// counters; the ids in between are free. Only for an allocator that has handed out nothing yet.
    /// </summary>
    public void Restore(IEnumerable<(CounterKey Key, ulong Slot)> assignment)
    {
        if (_slots.Count > 0 || _next > 0) throw new InvalidOperationException("counter slots are already in use");
        foreach (var (key, slot) in assignment)
        {
            if (_slots.ContainsKey(key) || _slots.ContainsValue(slot)) throw new ArgumentException($"slot {slot} or {key} is given twice");
            _slots[key] = slot;
        }
        _next = _slots.Count == 0 ? 0 : _slots.Values.Max() + 1;
        var used = _slots.Values.ToHashSet();
        for (ulong id = 0; id < _next; id++)
            if (!used.Contains(id)) _free.Add(id);
    }

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
