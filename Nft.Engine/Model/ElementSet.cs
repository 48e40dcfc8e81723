using Nft.Bytecode;
using System.Collections;
using System.Collections.Immutable;

namespace Nft.Engine.Model;

/// <summary>
/// The elements of a set, ordered by <see cref="ElementKey"/>, immutable. Besides lookup it answers
/// in O(log² n) what the kernel's rbtree answers by walking to a key's neighbours, and keeps the
/// counts that size checks and dumps need, so that no per-element operation scans the set.
/// </summary>
public sealed class ElementSet : IEnumerable<ElementRecord>
{
    sealed class ById : IComparer<ElementRecord>
    {
        public static readonly ById Instance = new();
        public int Compare(ElementRecord? x, ElementRecord? y) => x!.Id.CompareTo(y!.Id);
    }

    public static readonly ElementSet Empty = new(ImmutableSortedSet.Create<ElementRecord>(ById.Instance), 0, 0);

    readonly ImmutableSortedSet<ElementRecord> _items;

    ElementSet(ImmutableSortedSet<ElementRecord> items, int starts, int countable)
    {
        _items = items;
        Starts = starts;
        Countable = countable;
    }

    public int Count => _items.Count;
    /// <summary>Elements that are not interval ends (what a set's size limits).</summary>
    public int Starts { get; }
    /// <summary>Elements that are neither interval ends nor catch-all (NFTA_SET_COUNT).</summary>
    public int Countable { get; }
    public ElementRecord this[int index] => _items[index];

    static ElementRecord Probe(ElementKey id) => new(id, null!, null, null);

    public bool TryGetValue(ElementKey id, out ElementRecord found) => _items.TryGetValue(Probe(id), out found!);

    public ElementSet Add(ElementRecord e) => new(_items.Add(e), Starts + (e.IsIntervalEnd ? 0 : 1), Countable + (IsCountable(e) ? 1 : 0));

    public ElementSet Remove(ElementKey id)
    {
        if (!TryGetValue(id, out var e)) return this;
        return new(_items.Remove(e), Starts - (e.IsIntervalEnd ? 0 : 1), Countable - (IsCountable(e) ? 1 : 0));
    }

    /// <summary>Replaces an element by one with the same identity.</summary>
    public ElementSet SetItem(ElementRecord e) => new(_items.Remove(e).Add(e), Starts, Countable);

    public ElementSet Clear() => Empty;

    static bool IsCountable(ElementRecord e) => (e.Flags & ((uint)NftSetElemFlags.IntervalEnd | (uint)NftSetElemFlags.Catchall)) == 0;

    /// <summary>
    /// Index of the first element whose key is greater than <paramref name="key"/> (catch-all elements,
    /// which have no key and sort last, count as greater); Count when there is none.
    /// </summary>
    public int UpperBound(ReadOnlySpan<byte> key) => UpperBound(key, _items.Count, i => _items[i]);

    static int UpperBound(ReadOnlySpan<byte> key, int count, Func<int, ElementRecord> at)
    {
        int lo = 0, hi = count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            var x = at(mid);
            bool greater = (x.Flags & (uint)NftSetElemFlags.Catchall) != 0 || x.Key.AsSpan().SequenceCompareTo(key) > 0;
            if (greater) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }

    /// <summary>The last element whose key is at most <paramref name="key"/> and the first one above it.</summary>
    public (ElementRecord? AtOrBelow, ElementRecord? Above) Around(ReadOnlySpan<byte> key) => Around(key, _items.Count, i => _items[i]);

    static (ElementRecord? AtOrBelow, ElementRecord? Above) Around(ReadOnlySpan<byte> key, int count, Func<int, ElementRecord> at)
    {
        int i = UpperBound(key, count, at);
        return (i > 0 ? at(i - 1) : null, i < count && (at(i).Flags & (uint)NftSetElemFlags.Catchall) == 0 ? at(i) : null);
    }

    /// <summary>
    /// An editable copy for one message's many elements: the same operations, answers and counts as a chain
    /// of <see cref="Add"/>, <see cref="Remove"/> and <see cref="SetItem"/> calls on immutable sets, without a
    /// new path of tree nodes per element (a NEWSETELEM of thousands of elements allocated one per element
    /// and level). <see cref="ToImmutable"/> freezes what it built; the set it came from never changes.
    /// </summary>
    public Builder ToBuilder() => new(_items.ToBuilder(), Starts, Countable);

    public sealed class Builder : IEnumerable<ElementRecord>
    {
        readonly ImmutableSortedSet<ElementRecord>.Builder _items;
        readonly Func<int, ElementRecord> _at;

        internal Builder(ImmutableSortedSet<ElementRecord>.Builder items, int starts, int countable)
        {
            _items = items;
            _at = i => _items[i];
            Starts = starts;
            Countable = countable;
        }

        public int Count => _items.Count;
        /// <inheritdoc cref="ElementSet.Starts"/>
        public int Starts { get; private set; }
        /// <inheritdoc cref="ElementSet.Countable"/>
        public int Countable { get; private set; }

        public bool TryGetValue(ElementKey id, out ElementRecord found) => _items.TryGetValue(Probe(id), out found!);

        /// <summary>Adds an element whose identity is not in the set yet.</summary>
        public void Add(ElementRecord e) => TryAdd(e); // as ElementSet.Add: an identity already there changes nothing

        /// <summary>Adds the element in one walk of the tree; false, and nothing changed, when its identity is there.</summary>
        public bool TryAdd(ElementRecord e)
        {
            if (!_items.Add(e)) return false;
            Starts += e.IsIntervalEnd ? 0 : 1;
            Countable += IsCountable(e) ? 1 : 0;
            return true;
        }

        public void Remove(ElementKey id)
        {
            if (!TryGetValue(id, out var e)) return;
            _items.Remove(e);
            Starts -= e.IsIntervalEnd ? 0 : 1;
            Countable -= IsCountable(e) ? 1 : 0;
        }

        /// <inheritdoc cref="ElementSet.SetItem"/>
        public void SetItem(ElementRecord e)
        {
            _items.Remove(e);
            _items.Add(e);
        }

        /// <inheritdoc cref="ElementSet.Around"/>
        public (ElementRecord? AtOrBelow, ElementRecord? Above) Around(ReadOnlySpan<byte> key) => ElementSet.Around(key, _items.Count, _at);

        public ElementSet ToImmutable() => new(_items.ToImmutable(), Starts, Countable);

        public IEnumerator<ElementRecord> GetEnumerator() => _items.GetEnumerator();
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public IEnumerator<ElementRecord> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
