namespace Nft.Lifter;

/// <summary>
/// Names the counter of one rule (its first counter expression; a later one has <see cref="ExpressionIndex"/>), a named counter object (<see cref="Object"/> set, chain empty) that
/// every rule naming it shares (the data plane counts it in one slot), or the counter of one set element
/// (<see cref="Element"/>: chain is the set's name, never empty, and <see cref="Object"/> the element's key).
/// </summary>
public readonly record struct CounterKey(byte Family, string Table, string Chain, ulong RuleHandle)
{
    public string? Object { get; init; }

    /// <summary>
    /// The expression index of a rule's second or later counter (each counts what reaches it, as nf_tables' do); null for
    /// the rule's first counter, which keeps the key rules had when a rule had one slot (state files of older daemons name it so).
    /// </summary>
    public int? ExpressionIndex { get; init; }

    /// <summary>The keys of the counter expressions of a rule, with each one's expression index (see <see cref="ExpressionIndex"/>).</summary>
    public static IEnumerable<(int Index, CounterKey Key)> OfRule(byte family, string table, string chain, ulong handle, IReadOnlyList<Nft.Bytecode.Expressions.Expression> exprs)
    {
        bool first = true;
        for (int i = 0; i < exprs.Count; i++)
        {
            if (exprs[i] is not Nft.Bytecode.Expressions.CounterExpr) continue;
            yield return (i, new CounterKey(family, table, chain, handle) { ExpressionIndex = first ? null : i });
            first = false;
        }
    }

    public static CounterKey Named(byte family, string table, string name) => new(family, table, "", 0) { Object = name };

    /// <summary>
    /// The counter of the element of <paramref name="set"/> with this key (and key end, for a concatenated
    /// range): the key in hex, so the state file keeps it as it keeps a named counter's name.
    /// </summary>
    public static CounterKey Element(byte family, string table, string set, byte[] key, byte[]? keyEnd) =>
        new(family, table, set, 0) { Object = ElementKey(key, keyEnd) };

    /// <inheritdoc cref="Element(byte, string, string, byte[], byte[])"/>
    public static CounterKey Element(byte family, string table, string set, Nft.Bytecode.Data.NftData? key, Nft.Bytecode.Data.NftData? keyEnd) =>
        new(family, table, set, 0) { Object = ElementKey(key, keyEnd) };

    /// <summary>An element's key (and key end) in hex, as <see cref="Element(byte, string, string, byte[], byte[])"/> names its counter.</summary>
    public static string ElementKey(byte[] key, byte[]? keyEnd) => Convert.ToHexString(key) + (keyEnd is { } end ? "-" + Convert.ToHexString(end) : "");

    /// <inheritdoc cref="ElementKey(byte[], byte[])"/>
    public static string ElementKey(Nft.Bytecode.Data.NftData? key, Nft.Bytecode.Data.NftData? keyEnd) =>
        ElementKey((key as Nft.Bytecode.Data.ValueData)?.Value ?? [], (keyEnd as Nft.Bytecode.Data.ValueData)?.Value);

    public override string ToString() => Object is { } o
        ? Chain.Length > 0 ? $"{FamilyNames.Of(Family)} {Table} set {Chain} element {o}" : $"{FamilyNames.Of(Family)} {Table} counter {o}"
        : $"{FamilyNames.Of(Family)} {Table} {Chain} handle {RuleHandle}" + (ExpressionIndex is { } i ? $" expression {i}" : "");
}

/// <summary>
/// Names the state of one quota or limit: an anonymous expression of a rule (chain, handle, expression
/// index), or a named object (<see cref="Object"/>, chain null) that every rule referring to it shares.
/// </summary>
public readonly record struct StatefulKey(byte Family, string Table, string? Chain, ulong RuleHandle, int ExpressionIndex, string? Object)
{
    public static StatefulKey Named(byte family, string table, string name) => new(family, table, null, 0, 0, name);

    /// <summary>
    /// The state of statement <paramref name="index"/> of the element of <paramref name="set"/> with this key
    /// (and key end): chain is the set's name and <see cref="Element"/> the key in hex, as <see cref="CounterKey.Element(byte, string, string, byte[], byte[])"/> names it.
    /// </summary>
    public static StatefulKey Element(byte family, string table, string set, byte[] key, byte[]? keyEnd, int index) =>
        new(family, table, set, 0, index, null) { ElementKey = CounterKey.ElementKey(key, keyEnd) };

    /// <inheritdoc cref="Element(byte, string, string, byte[], byte[], int)"/>
    public static StatefulKey Element(byte family, string table, string set, Nft.Bytecode.Data.NftData? key, Nft.Bytecode.Data.NftData? keyEnd, int index) =>
        new(family, table, set, 0, index, null) { ElementKey = CounterKey.ElementKey(key, keyEnd) };

    /// <summary>The element's key in hex (see <see cref="Element"/>); null for a rule's or an object's state.</summary>
    public string? ElementKey { get; init; }

    public override string ToString() => Object is { } o
        ? $"{FamilyNames.Of(Family)} {Table} object {o}"
        : ElementKey is { } k ? $"{FamilyNames.Of(Family)} {Table} set {Chain} element {k} statement {ExpressionIndex}"
        : $"{FamilyNames.Of(Family)} {Table} {Chain} handle {RuleHandle} expression {ExpressionIndex}";
}

/// <summary>
/// Hands out stable slot ids: a key keeps its slot for as long as the same instance lifts it,
/// across transactions, so the daemon can read its state back by name after recompiles. Slots of
/// keys that disappeared are reused by later keys after <see cref="Retain"/>. Not thread-safe: the
/// daemon lifts under its one lock.
/// </summary>
public class SlotTable<TKey> where TKey : notnull
{
    readonly Dictionary<TKey, ulong> _slots = new();
    /// <summary>The key of each slot handed out, kept beside <see cref="_slots"/> so a lift finds an object map's objects by slot without inverting the table each time.</summary>
    readonly Dictionary<ulong, TKey> _keys = new();
    readonly SortedSet<ulong> _free = new();
    ulong _next;

    public IReadOnlyDictionary<TKey, ulong> Slots => _slots;

    /// <summary>Counts the times a key lost its slot or slots were restored: a lift kept from before is valid while it stays.</summary>
    public long Version { get; private set; }

    public ulong GetOrAdd(TKey key)
    {
        if (_slots.TryGetValue(key, out var id)) return id;
        if (_free.Count > 0)
        {
            id = _free.Min;
            _free.Remove(id);
        }
        else id = _next++;
        _slots[key] = id;
        _keys[id] = key;
        return id;
    }

    public bool TryGet(TKey key, out ulong slot) => _slots.TryGetValue(key, out slot);

    /// <summary>The key a slot was handed to.</summary>
    public bool TryGetKey(ulong slot, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TKey key) => _keys.TryGetValue(slot, out key);

    /// <summary>
    /// Takes the assignment an earlier process made (keys with their slot ids, distinct), so that the same
    /// ruleset compiles to the same programs and a restarted daemon can adopt the pinned ones with their
    /// counters; the ids in between are free. Only for an allocator that has handed out nothing yet.
    /// </summary>
    public void Restore(IEnumerable<(TKey Key, ulong Slot)> assignment)
    {
        if (_slots.Count > 0 || _next > 0) throw new InvalidOperationException("counter slots are already in use");
        foreach (var (key, slot) in assignment)
        {
            if (_slots.ContainsKey(key) || _keys.ContainsKey(slot)) throw new ArgumentException($"slot {slot} or {key} is given twice");
            _slots[key] = slot;
            _keys[slot] = key;
        }
        Version++;
        _next = _slots.Count == 0 ? 0 : _slots.Values.Max() + 1;
        var used = _slots.Values.ToHashSet();
        for (ulong id = 0; id < _next; id++)
            if (!used.Contains(id)) _free.Add(id);
    }

    /// <summary>Frees the slots of every key not in <paramref name="live"/> (after a successful lift of the whole ruleset).</summary>
    public void Retain(IEnumerable<TKey> live)
    {
        var keep = live.ToHashSet();
        Free(k => !keep.Contains(k));
    }

    /// <summary>
    /// <see cref="Retain(IEnumerable{TKey})"/> of a lift's keys with the slots it got from this table (every commit):
    /// when each holds its slot here and there are as many as slots, none is freed, which is found by slot without
    /// hashing a key or building a set of them (10,000 keys on each <c>nft add rule</c> into a 10,000-rule chain).
    /// </summary>
    public void Retain(IReadOnlyDictionary<TKey, ulong> live)
    {
        if (live.Count == _slots.Count && HoldTheirSlots(live)) return;
        Free(k => !live.ContainsKey(k));
    }

    bool HoldTheirSlots(IReadOnlyDictionary<TKey, ulong> live)
    {
        var equal = EqualityComparer<TKey>.Default;
        foreach (var (key, slot) in live)
            if (!_keys.TryGetValue(slot, out var holder) || !equal.Equals(holder, key)) return false;
        return true;
    }

    void Free(Func<TKey, bool> gone)
    {
        List<TKey>? free = null;
        foreach (var k in _slots.Keys)
            if (gone(k)) (free ??= []).Add(k);
        foreach (var k in free ?? [])
        {
            Version++;
            _free.Add(_slots[k]);
            _keys.Remove(_slots[k]);
            _slots.Remove(k);
        }
    }
}

/// <summary>
/// The counter slot ids of rules (one per counter expression), and beside them the state slot ids of
/// quotas (<see cref="Quotas"/>) and limits (<see cref="Limits"/>), separate id spaces: the data plane keeps
/// each in a map of its own.
/// </summary>
public sealed class CounterSlots : SlotTable<CounterKey>
{
    public SlotTable<StatefulKey> Quotas { get; } = new();
    public SlotTable<StatefulKey> Limits { get; } = new();
}
