using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>The identity of an element: its key bytes, the closing key of a range, and its flags.</summary>
public readonly record struct ElementKey(byte[] Key, byte[]? KeyEnd, uint Flags) : IComparable<ElementKey>
{
    public int CompareTo(ElementKey o)
    {
        // Catch-all elements have no key: they sort last.
        int c = (Flags & (uint)NftSetElemFlags.Catchall).CompareTo(o.Flags & (uint)NftSetElemFlags.Catchall);
        if (c != 0) return c;
        c = Key.AsSpan().SequenceCompareTo(o.Key);
        if (c != 0) return c;
        c = (KeyEnd ?? []).AsSpan().SequenceCompareTo(o.KeyEnd ?? []);
        if (c != 0) return c;
        return (Flags & (uint)NftSetElemFlags.IntervalEnd).CompareTo(o.Flags & (uint)NftSetElemFlags.IntervalEnd);
    }

    public bool Equals(ElementKey o) => CompareTo(o) == 0;
    // Hashes all of what CompareTo compares: batches track large numbers of elements in dictionaries.
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Key);
        if (KeyEnd != null) h.AddBytes(KeyEnd);
        h.Add(Flags & ((uint)NftSetElemFlags.Catchall | (uint)NftSetElemFlags.IntervalEnd));
        return h.ToHashCode();
    }
}

/// <summary>
/// One set element: the Nft.Bytecode element as the kernel dumps it (key, key end, data or verdict,
/// statements, object, flags, timeout when it differs from the set's, user data), with the
/// bookkeeping the emulation needs: its identity for ordering, and its expiry on the daemon's
/// monotonic clock in milliseconds (the dump shows the time left).
/// </summary>
public sealed record ElementRecord(ElementKey Id, SetElement Element, ulong? Timeout, long? ExpiresAtMs)
{
    /// <summary>When the element was added (a namespace-wide sequence); not part of its identity.</summary>
    public long InsertSeq { get; init; }
    public byte[] Key => Id.Key;
    public uint Flags => Id.Flags;
    public byte[]? Data => (Element.Data as ValueData)?.Value;
    public Verdict? Verdict => (Element.Data as VerdictData)?.Verdict;
    public string? ObjRef => Element.ObjRef;
    public bool IsIntervalEnd => (Flags & (uint)NftSetElemFlags.IntervalEnd) != 0;
}
