using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The token buckets of a packet-written set's elements carried into the bucket map of the copies that replace theirs,
/// when that cannot be the old map itself (<see cref="ElementLists.SharedBuckets"/>: it has no room for what the new
/// lists and `size` need, a hash map never grows). The kernel keeps each element's nft_limit clone through any change of
/// the rules, so every bucket goes with its (key, born stamp) and its state (last, tokens) as it is: copied before the
/// swap (<see cref="Before"/>, the new map is not read yet), and what the old program did to a bucket after that copy is
/// carried once it stopped running (<see cref="After"/>) unless the new program has since taken or made that bucket
/// itself, as <see cref="PacketPathCarry.After"/> keeps the newer of an element's two values. Values are read and written
/// under the bucket's own lock (BPF_F_LOCK): a packet updating it never leaves a torn (last, tokens).
/// </summary>
internal sealed class BucketCarry
{
    readonly ElementBuckets _from, _to;
    /// <summary>Per bucket key, the value <see cref="Before"/> copied.</summary>
    readonly Dictionary<byte[], byte[]> _copied;

    BucketCarry(ElementBuckets from, ElementBuckets to, Dictionary<byte[], byte[]> copied) => (_from, _to, _copied) = (from, to, copied);

    /// <summary>Whether the buckets of <paramref name="from"/> can be written to <paramref name="to"/> as they are: the same bucket key.</summary>
    public static bool Carries(ElementBuckets from, ElementBuckets to) =>
        !ReferenceEquals(from, to) && from.Map.KeySize == to.Map.KeySize && from.ElementKeySize == to.ElementKeySize
        && to.Map.MaxEntries >= from.Map.MaxEntries;

    /// <summary>Copies every bucket of <paramref name="from"/> to <paramref name="to"/> (which no program reads yet); buckets of elements not carried are swept after the swap.</summary>
    public static BucketCarry Before(ElementBuckets from, ElementBuckets to)
    {
        var copied = new Dictionary<byte[], byte[]>(ByteArrayComparer.Instance);
        foreach (var key in from.Map.Keys())
        {
            var value = new byte[LimitMap.ValueSize];
            // deleted since it was listed (its element went): nothing to carry
            if (!from.Map.TryLookup(key, value, BpfMap.Locked)) continue;
            to.Map.Update(key, value, BpfMap.Locked);
            copied[key] = value;
        }
        return new BucketCarry(from, to, copied);
    }

    /// <summary>
    /// Once the old program no longer runs: each bucket it changed or made since <see cref="Before"/> is written to the new
    /// map where the new program left it as copied (or has none of that key and stamp). Returns how many were written.
    /// </summary>
    public int After()
    {
        var n = 0;
        var value = new byte[LimitMap.ValueSize];
        var now = new byte[LimitMap.ValueSize];
        foreach (var key in _from.Map.Keys())
        {
            if (!_from.Map.TryLookup(key, value, BpfMap.Locked)) continue;
            var had = _copied.TryGetValue(key, out var copied);
            if (had && SameState(copied!, value)) continue;
            var present = _to.Map.TryLookup(key, now, BpfMap.Locked);
            // the new program took or made that bucket since: its state is the newer one
            if (had ? !present || !SameState(copied!, now) : present) continue;
            try
            {
                _to.Map.Update(key, value, (had ? BpfMap.Exist : BpfMap.NoExist) | BpfMap.Locked);
                n++;
            }
            catch (BpfException e) when (e.Errno is 2 or 17)
            {
                // the new program made (EEXIST) or its element's delete took (ENOENT) that bucket in this instant: its own
            }
        }
        return n;
    }

    /// <summary>The same (last, tokens): the bytes after the lock word.</summary>
    static bool SameState(byte[] a, byte[] b) => a.AsSpan(LimitMap.Last).SequenceEqual(b.AsSpan(LimitMap.Last));
}
