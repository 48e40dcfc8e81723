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
/// whose stamp no element holds in either copy belongs to a dead element: no packet can reach it again (a new element
/// of the key gets a new stamp), so <see cref="Sweep"/> deletes it without racing the packet path.
/// </summary>
public sealed class ElementBuckets
{
    /// <summary>Buckets beyond the set's bound for those made again by packets racing a delete, until the next sweep.</summary>
    public const int Slack = 1024;

    ElementBuckets(BpfMap map, int elementKeySize, IReadOnlyList<IReadOnlyList<int>> bornOffsets)
    {
        Map = map;
        ElementKeySize = elementKeySize;
        BornOffsets = bornOffsets;
    }

    public BpfMap Map { get; }
    public int ElementKeySize { get; }
    /// <summary>Per element tag (its statement list), the value offsets of its limits' born stamps.</summary>
    public IReadOnlyList<IReadOnlyList<int>> BornOffsets { get; }

    /// <summary>The bucket map's name (and pin): the set map's with @b, as the copies' are with @0 and @1.</summary>
    public static string Name(string setMap) => $"{setMap}@b";

    public static ElementBuckets Create(string setMap, BucketSpec spec) =>
        new(SpinLockMap.Create(BpfMapType.Hash, Name(setMap), spec.KeySize, LimitMap.ValueSize, spec.MaxEntries, LimitMap.Lock),
            spec.ElementKeySize, spec.BornOffsets);

    /// <summary>Wraps a map reopened from a pin (a restarted daemon keeps every bucket), refused unless shaped as <paramref name="spec"/> says.</summary>
    public static ElementBuckets Adopt(BpfMap map, BucketSpec spec) => Fits(map, spec)
        ? new ElementBuckets(map, spec.ElementKeySize, spec.BornOffsets)
        : throw new InvalidDataException($"pinned map {map.Name} is not the bucket map the program was compiled with");

    public bool Fits(BucketSpec spec) => Fits(Map, spec) && BucketSpec.SameOffsets(BornOffsets, spec.BornOffsets);

    static bool Fits(BpfMap map, BucketSpec spec) => map.Type == BpfMapType.Hash && map.KeySize == spec.KeySize
        && map.ValueSize == LimitMap.ValueSize && map.MaxEntries == spec.MaxEntries;

    /// <summary>
    /// Deletes the buckets of elements no longer in either copy (deleted, flushed, expired and collected, replaced). A
    /// bucket is made only after its element was written to both copies, so one whose (key, stamp) neither holds is
    /// dead; called between batches, when the copies agree up to the packet path's own writes. Returns how many went.
    /// </summary>
    public int Sweep(IReadOnlyList<BpfMap> copies)
    {
        var n = 0;
        var value = new byte[copies[0].ValueSize];
        foreach (var bucket in Map.Keys())
        {
            var key = bucket.AsSpan(0, ElementKeySize);
            var born = BinaryPrimitives.ReadUInt64LittleEndian(bucket.AsSpan(bucket.Length - 8));
            var live = false;
            foreach (var copy in copies)
                if (copy.TryLookup(key, value) && StampsOf(value).Any(o => BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(o)) == born))
                    live = true;
            if (!live && Map.Delete(bucket)) n++;
        }
        return n;
    }

    /// <summary>The offsets of the born stamps of the element whose value this is: its tag's (none without statements, code bit 0 clear).</summary>
    IReadOnlyList<int> StampsOf(byte[] value)
    {
        var code = BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(4));
        if ((code & 1) == 0) return [];
        var tag = (int)(code >> SetLayout.TagShift);
        return tag < BornOffsets.Count ? BornOffsets[tag] : [];
    }

    public void Dispose() => Map.Dispose();
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
