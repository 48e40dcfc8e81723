using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The elements a replaced program's packet path wrote (nft_dynset) carried into the program that replaces it, as
/// the kernel's set keeps them through a transaction that changes its chains: every key of the old program's live
/// copy that the transaction itself did not add, renew or remove (<see cref="SetChange"/>s, which win) is written
/// to both copies of the new program's map with the old value (expiry and own timeout), before the new program is
/// installed; what the old program still wrote until it stopped running is carried after the swap
/// (<see cref="After"/>), unless the new program has since written that key itself. Elements with limits keep their
/// buckets: the new copies share the old ones' bucket map when it has room (<see cref="ElementLists.SharedBuckets"/>),
/// else the buckets are copied into the new copies' own, larger map (<see cref="BucketCarry"/>); the stamps are carried
/// as they are, and once the old copies are gone <see cref="Sweep"/> deletes the buckets no carried or new element holds.
/// </summary>
internal sealed class PacketPathCarry
{
    readonly LoadedProgram _old, _next;
    /// <summary>
    /// Per packet-written set: what was carried (per key, the old live value and what it was written as), the keys the
    /// transaction decides, and how a value converts.
    /// </summary>
    readonly List<(string Set, Dictionary<byte[], (byte[] Old, byte[] Written)> Carried, HashSet<byte[]> Decided, Func<byte[], byte[]?> Convert)> _sets = new();
    /// <summary>The sets whose elements keep their buckets (the bucket map shared with the old copies, or copied), swept after the swap.</summary>
    readonly List<string> _keptBuckets = new();
    /// <summary>The buckets copied into a new bucket map, whose old program's changes <see cref="After"/> carries.</summary>
    readonly List<BucketCarry> _copiedBuckets = new();

    PacketPathCarry(LoadedProgram old, LoadedProgram next)
    {
        _old = old;
        _next = next;
    }

    /// <summary>
    /// A set the packet path writes that <paramref name="next"/> gives a size below the elements the replaced program's
    /// map holds and the transaction keeps (`add set` with a smaller size: the kernel keeps them, and its packet path then
    /// adds past the size, as nft_dynset only stops at a count equal to it), which a map of that size cannot hold. A
    /// <paramref name="recreated"/> set holds none of them.
    /// </summary>
    public static string? Overflowing(LoadedProgram old, CompiledProgram next, IReadOnlyDictionary<string, SetChange> changes, IReadOnlySet<string> recreated)
    {
        foreach (var (set, layout) in next.SetLayouts)
        {
            if (!layout.Set.PacketWritten || recreated.Contains(set) || next.Maps.FirstOrDefault(m => m.Name == ProgramCompiler.SetMapName(set)) is not { } spec
                || old.LiveEntries(set) is not { } live || live.Count <= spec.MaxEntries) continue;
            var removed = 0;
            if (changes.TryGetValue(set, out var change))
                foreach (var e in change.Removed)
                    try
                    {
                        removed += layout.EntriesOf(e).Count(x => live.ContainsKey(x.Key));
                    }
                    catch (CodegenException)
                    {
                        // not in the map in this layout: nothing it holds is removed
                    }
            if (live.Count - removed > spec.MaxEntries)
                return $"set '{set}': size {spec.MaxEntries} is below the {live.Count - removed} elements it holds, which the kernel keeps and adds past";
        }
        return null;
    }

    /// <summary>
    /// Carries before the swap; null when the new program writes no set the old one wrote with the same map layout.
    /// <paramref name="carried"/> holds the pairs of copies (old, new) carried already in this commit, and takes the ones
    /// carried here: programs sharing copies (an inet chain's two) carry them once, before either is swapped in
    /// (Enforcer.SwapIn); a second carry would rewrite what the first new program wrote since. A <paramref name="recreated"/>
    /// set (deleted and created anew by the transaction) is not carried: the new one starts with its own elements alone.
    /// </summary>
    public static PacketPathCarry? Before(LoadedProgram old, LoadedProgram next, IReadOnlyDictionary<string, SetChange> changes,
        IReadOnlySet<string> recreated, ISet<(SetCopies Old, SetCopies Next)>? carried = null)
    {
        PacketPathCarry? carry = null;
        foreach (var (set, layout) in next.Compiled.SetLayouts)
        {
            if (!layout.Set.PacketWritten || recreated.Contains(set) || !old.Compiled.SetLayouts.TryGetValue(set, out var was) || !was.Set.PacketWritten
                || was.KeySize != layout.KeySize || next.SharesSet(old, set)) continue;
            var map = ProgramCompiler.SetMapName(set);
            if (carried != null && old.PacketWrittenCopies(map) is { } from && next.PacketWrittenCopies(map) is { } to && !carried.Add((from, to))) continue;
            var bucketsShared = next.SharesBuckets(old, set);
            if (bucketsShared) (carry ??= new PacketPathCarry(old, next))._keptBuckets.Add(set);
            // a bucket map of the new copies' own (the old one has no room for what they need): the buckets are copied
            var copyBuckets = !bucketsShared && old.Buckets(set) is { } oldBuckets && next.Buckets(set) is { } newBuckets && BucketCarry.Carries(oldBuckets, newBuckets);
            // the values as they are, or converted to the layout holding every list the old program's elements carry (see
            // ElementLists); else the set starts empty
            if (old.LiveEntries(set) is not { } live || ElementLists.Converter(was, layout, bucketsShared || copyBuckets) is not { } convert) continue;
            var converted = new Dictionary<byte[], (byte[] Old, byte[] Written)>(live.Count, ByteArrayComparer.Instance);
            foreach (var (k, v) in live)
                if (convert(v) is { } c) converted[k] = (v, c);
            if (converted.Count < live.Count) continue;
            var decided = new HashSet<byte[]>(ByteArrayComparer.Instance);
            if (changes.TryGetValue(set, out var change))
                foreach (var e in change.Added.Concat(change.Removed))
                    foreach (var (k, _) in layout.EntriesOf(e)) decided.Add(k);
            carry ??= new PacketPathCarry(old, next);
            if (copyBuckets)
            {
                // before the elements: a carried element's bucket is in the new map before any packet can find it there
                carry._copiedBuckets.Add(BucketCarry.Before(old.Buckets(set)!, next.Buckets(set)!));
                carry._keptBuckets.Add(set);
            }
            var written = new Dictionary<byte[], (byte[] Old, byte[] Written)>(ByteArrayComparer.Instance);
            foreach (var (k, c) in converted)
            {
                if (decided.Contains(k)) continue;
                next.WritePacketPath(set, k, c.Written);
                written[k] = c;
            }
            carry._sets.Add((set, written, decided, convert));
        }
        return carry;
    }

    /// <summary>
    /// After the swap, once no run of the old program is left: its changes since <see cref="Before"/> (elements it
    /// added, renewed or deleted then) go to the new program's map where the new program did not change the key; where
    /// it did, what the old program counted since on a carried element is added (<see cref="MergeCounts"/>).
    /// </summary>
    public void After()
    {
        _old.WaitForReaders();
        foreach (var (set, carried, decided, convert) in _sets)
        {
            if (_old.LiveEntries(set) is not { } live || _next.LiveEntries(set) is not { } now) continue;
            foreach (var (k, v) in live)
            {
                var was = carried.TryGetValue(k, out var c);
                if (decided.Contains(k) || was && c.Old.AsSpan().SequenceEqual(v)) continue;
                // the new program added or renewed it since: its value is the newer one, with what the old program counted
                // on a carried element since Before added (CountMerge)
                if (now.TryGetValue(k, out var n) && !(was && c.Written.AsSpan().SequenceEqual(n)))
                {
                    if (was) MergeCounts(set, k, c.Written, convert(v));
                    continue;
                }
                // made or changed by the old program since Before: its list is one the new program holds (ElementLists keeps
                // the old program's own and every list its live elements carried)
                if (convert(v) is { } converted) _next.WritePacketPath(set, k, converted);
            }
            foreach (var (k, c) in carried)
                if (!live.ContainsKey(k) && now.TryGetValue(k, out var n) && c.Written.AsSpan().SequenceEqual(n)) _next.DeletePacketPath(set, k);
        }
        foreach (var buckets in _copiedBuckets) buckets.After();
    }

    /// <summary>
    /// Adds what the old program counted on a carried element since <see cref="Before"/> to the new program's value, read
    /// again just before the write. A packet the new program counts on that element between this read and the write is
    /// lost (a BPF hash map has no atomic add from user space): two syscalls wide, and only for an element both programs
    /// counted on in the instant of the swap.
    /// </summary>
    void MergeCounts(string set, byte[] key, byte[] written, byte[]? moved)
    {
        if (moved == null || _next.SetMap(set) is not { } live) return;
        var now = new byte[live.ValueSize];
        if (!live.TryLookup(key, now)) return;
        if (CountMerge.Merged(_next.Compiled.SetLayouts[set], written, moved, now) is { } merged) _next.WritePacketPath(set, key, merged);
    }

    /// <summary>
    /// Once the old program is gone (its copies with it, unless another program still holds them): the buckets of a shared
    /// or copied bucket map that no copy sharing it holds any more (elements the transaction removed or that were not carried), so the
    /// map holds the new copies' buckets within the bound their layout sized it for (see <see cref="ElementBuckets.Sweep"/>).
    /// </summary>
    public void Sweep()
    {
        foreach (var set in _keptBuckets)
            try
            {
                _next.Buckets(set)?.Sweep();
            }
            catch (Libbpf.BpfException)
            {
                // a bucket left over is taken by a later sweep; it never answers for a new element (another stamp)
            }
    }
}
