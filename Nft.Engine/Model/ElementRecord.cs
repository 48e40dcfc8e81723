namespace Nft.Engine.Model;

/// <summary>The identity of an element: its key bytes, the closing key of a range, and its flags.</summary>
public readonly record struct ElementKey(byte[] Key, byte[]? KeyEnd, uint Flags) : IComparable<ElementKey>
{
    public int CompareTo(ElementKey o)
    {
        // Catch-all elements have no key: they sort last.
        int c = (Flags & SetElemAttr.FCatchAll).CompareTo(o.Flags & SetElemAttr.FCatchAll);
        if (c != 0) return c;
        c = Key.AsSpan().SequenceCompareTo(o.Key);
        if (c != 0) return c;
        c = (KeyEnd ?? []).AsSpan().SequenceCompareTo(o.KeyEnd ?? []);
        if (c != 0) return c;
        return (Flags & SetElemAttr.FIntervalEnd).CompareTo(o.Flags & SetElemAttr.FIntervalEnd);
    }

    public bool Equals(ElementKey o) => CompareTo(o) == 0;
    public override int GetHashCode() => HashCode.Combine(Key.Length > 0 ? Key[^1] : 0, Key.Length, Flags);
}

/// <summary>A verdict as map data: code and, for jump/goto, the chain.</summary>
public sealed record ElementVerdict(int Code, string? Chain);

/// <summary>
/// One set element. <see cref="Data"/> is the mapped value of a data map, <see cref="Verdict"/> the
/// verdict of a verdict map. Expiry is measured on the daemon's monotonic clock, in milliseconds.
/// </summary>
public sealed record ElementRecord(
    ElementKey Id,
    byte[]? Data,
    ElementVerdict? Verdict,
    string? ObjRef,
    ulong? Timeout,
    long? ExpiresAtMs,
    byte[]? UserData,
    byte[]? Expressions)
{
    /// <summary>When the element was added (a namespace-wide sequence); not part of its identity.</summary>
    public long InsertSeq { get; init; }
    public byte[] Key => Id.Key;
    public uint Flags => Id.Flags;
}
