using System.Collections;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Bpfilter.Backend.Ir;

/// <summary>
/// An immutable list with value equality, so that records holding lists (rules, matchers, keys)
/// compare and hash by content. ImmutableArray alone compares by reference. Collection expressions
/// (`[a, b]`) build it through <see cref="ValueList.Create{T}"/> (its Add returns a new list).
/// </summary>
[CollectionBuilder(typeof(ValueList), nameof(ValueList.Create))]
public readonly struct ValueList<T> : IEquatable<ValueList<T>>, IReadOnlyList<T>
{
    private readonly ImmutableArray<T> _items;

    public ValueList(ImmutableArray<T> items) => _items = items.IsDefault ? ImmutableArray<T>.Empty : items;
    public ValueList(IEnumerable<T> items) => _items = items.ToImmutableArray();

    public static ValueList<T> Empty => new(ImmutableArray<T>.Empty);

    public ImmutableArray<T> Items => _items.IsDefault ? ImmutableArray<T>.Empty : _items;
    public int Count => Items.Length;
    public T this[int index] => Items[index];
    public bool IsEmpty => Count == 0;

    public ValueList<T> Add(T item) => new(Items.Add(item));

    public bool Equals(ValueList<T> other)
    {
        var a = Items;
        var b = other.Items;
        if (a.Length != b.Length) return false;
        var cmp = EqualityComparer<T>.Default;
        for (var i = 0; i < a.Length; i++)
            if (!cmp.Equals(a[i], b[i])) return false;
        return true;
    }

    public override bool Equals(object? obj) => obj is ValueList<T> other && Equals(other);

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var item in Items) h.Add(item);
        return h.ToHashCode();
    }

    public static bool operator ==(ValueList<T> left, ValueList<T> right) => left.Equals(right);
    public static bool operator !=(ValueList<T> left, ValueList<T> right) => !left.Equals(right);

    public ImmutableArray<T>.Enumerator GetEnumerator() => Items.GetEnumerator();
    IEnumerator<T> IEnumerable<T>.GetEnumerator() => ((IEnumerable<T>)Items).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable)Items).GetEnumerator();

    public static implicit operator ValueList<T>(T[] items) => new(ImmutableArray.Create(items));
    public static implicit operator ValueList<T>(ImmutableArray<T> items) => new(items);

    public override string ToString() => "[" + string.Join(", ", Items) + "]";
}

public static class ValueList
{
    public static ValueList<T> Of<T>(params T[] items) => new(ImmutableArray.Create(items));
    public static ValueList<T> Create<T>(ReadOnlySpan<T> items) => new(ImmutableArray.Create(items));
    public static ValueList<T> ToValueList<T>(this IEnumerable<T> items) => new(items);

    /// <summary>
    /// A list over <paramref name="items"/> itself, not a copy: for an array its maker fills and never writes again
    /// (the lifter's per-rule matchers and statements, where the copy was one more allocation per rule).
    /// </summary>
    public static ValueList<T> Own<T>(T[] items) => new(ImmutableCollectionsMarshal.AsImmutableArray(items));
}
