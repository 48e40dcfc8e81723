using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// The token buckets of the limits the packet path gives a set's elements (nft_limit_clone: one per element): a hash
/// map beside the set's two copies, not copied itself, keyed by (element key zero-padded to 8 bytes, u64 born stamp)
/// with <see cref="LimitMap"/>'s value {bpf_spin_lock, pad, last, tokens}. The program writes a stamp unique to the
/// element and limit (ktime_get_ns * 4 + 2 * index + 1) into both copies' values when it creates the element, and a
/// packet that finds the element takes the bucket of that stamp, making it full (BPF_NOEXIST) when absent. A bucket
/// whose stamp no element holds in any copy that shares the map belongs to a dead element: no packet can reach it
/// again (a new element of the key gets a new stamp), so <see cref="Sweep"/> deletes it without racing the packet path.
/// <para>
/// The map may be shared by several <see cref="SetCopies"/> of the set (<see cref="Sharers"/>): a program compiled
/// anew with another value layout for the set (other statement lists, another size) carries the elements with their
/// stamps into copies of its own and keeps their buckets by referencing this very map (the rates are in the code, the
/// buckets only here), so the old and the new generation of copies hold it until the old program is gone.
/// </para>
/// </summary>
public sealed class ElementBuckets
{
    /// <summary>Buckets beyond the set's bound for those made again by packets racing a delete, until the next sweep.</summary>
    public const int Slack = 1024;

    ElementBuckets(BpfMap map, int elementKeySize)
    {
        Map = map;
        ElementKeySize = elementKeySize;
    }

    public BpfMap Map { get; }
    public int ElementKeySize { get; }

    /// <summary>The copies whose elements' stamps name buckets here (each reads them at its own offsets); the map is closed when the last lets go.</summary>
    public HashSet<SetCopies> Sharers { get; } = [];

    /// <summary>The bucket map's name (and pin): the set map's with @b, as the copies' are with @0 and @1.</summary>
    public static string Name(string setMap) => $"{setMap}@b";

    public static ElementBuckets Create(string setMap, BucketSpec spec) =>
        new(SpinLockMap.Create(BpfMapType.Hash, Name(setMap), spec.KeySize, LimitMap.ValueSize, spec.MaxEntries, LimitMap.Lock), spec.ElementKeySize);

    /// <summary>Wraps a map reopened from a pin (a restarted daemon keeps every bucket), refused unless it serves <paramref name="spec"/>.</summary>
    public static ElementBuckets Adopt(BpfMap map, BucketSpec spec) => Fits(map, spec)
        ? new ElementBuckets(map, spec.ElementKeySize)
        : throw new InvalidDataException($"pinned map {map.Name} is not the bucket map the program was compiled with");

    /// <summary>
    /// Whether a program compiled with <paramref name="spec"/> can take its buckets here: the same bucket key, and room
    /// for at least the buckets its set needs (a map made for more limits per element or a larger `size` holds them).
    /// </summary>
    public bool Fits(BucketSpec spec) => Fits(Map, spec) && ElementKeySize == spec.ElementKeySize;

    static bool Fits(BpfMap map, BucketSpec spec) => map.Type == BpfMapType.Hash && map.KeySize == spec.KeySize
        && map.ValueSize == LimitMap.ValueSize && map.MaxEntries >= spec.MaxEntries;

    /// <summary>
    /// Deletes the buckets of elements no longer in any sharer's copies (deleted, flushed, expired and collected,
    /// replaced, not carried into a recompiled program). A bucket is made only after its element was written to both
    /// copies (a carried element is in the new copies before their program runs), so one whose (key, stamp) no copy
    /// holds is dead; called between batches, when the copies agree up to the packet path's own writes. Returns how
    /// many went.
    /// </summary>
    public int Sweep()
    {
        var n = 0;
        var sharers = Sharers.ToList();
        var values = sharers.Select(s => new byte[s.Copies[0].ValueSize]).ToList();
        foreach (var bucket in Map.Keys())
        {
            var key = bucket.AsSpan(0, ElementKeySize);
            var born = BinaryPrimitives.ReadUInt64LittleEndian(bucket.AsSpan(bucket.Length - 8));
            var live = false;
            for (var i = 0; i < sharers.Count && !live; i++)
                foreach (var copy in sharers[i].Copies)
                    if (copy.TryLookup(key, values[i]) && StampsOf(sharers[i].BornOffsets, values[i]).Any(o => BinaryPrimitives.ReadUInt64LittleEndian(values[i].AsSpan(o)) == born))
                    {
                        live = true;
                        break;
                    }
            if (!live && Map.Delete(bucket)) n++;
        }
        return n;
    }

    /// <summary>The offsets of the born stamps of the element whose value this is: its tag's (none without statements, code bit 0 clear).</summary>
    static IReadOnlyList<int> StampsOf(IReadOnlyList<IReadOnlyList<int>> bornOffsets, byte[] value)
    {
        var code = BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(4));
        if ((code & 1) == 0) return [];
        var tag = (int)(code >> SetLayout.TagShift);
        return tag < bornOffsets.Count ? bornOffsets[tag] : [];
    }

    /// <summary>Lets go of the map for <paramref name="sharer"/>; closes it when no sharer is left.</summary>
    public void Release(SetCopies sharer)
    {
        Sharers.Remove(sharer);
        if (Sharers.Count == 0) Map.Dispose();
    }
}

/// <summary>The shape of a set's bucket map (see <see cref="ElementBuckets"/>): its key size and entries, the element key's size and where the born stamps sit in the element's value.</summary>
public sealed record BucketSpec(int KeySize, int MaxEntries, int ElementKeySize, IReadOnlyList<IReadOnlyList<int>> BornOffsets)
{
    public bool Equals(BucketSpec? other) => other is not null && KeySize == other.KeySize && MaxEntries == other.MaxEntries
        && ElementKeySize == other.ElementKeySize && SameOffsets(BornOffsets, other.BornOffsets);

    /// <summary>The same stamp offsets for every tag.</summary>
    public static bool SameOffsets(IReadOnlyList<IReadOnlyList<int>> a, IReadOnlyList<IReadOnlyList<int>> b) =>
        a.Count == b.Count && a.Zip(b).All(x => x.First.SequenceEqual(x.Second));

    public override int GetHashCode() => HashCode.Combine(KeySize, MaxEntries, ElementKeySize, BornOffsets.Count);
}
