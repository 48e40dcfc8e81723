using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The elements a replaced program's packet path wrote (nft_dynset) carried into the program that replaces it, as
/// the kernel's set keeps them through a transaction that changes its chains: every key of the old program's live
/// copy that the transaction itself did not add, renew or remove (<see cref="SetChange"/>s, which win) is written
/// to both copies of the new program's map with the old value (expiry and own timeout), before the new program is
/// installed; what the old program still wrote until it stopped running is carried after the swap
/// (<see cref="After"/>), unless the new program has since written that key itself.
/// </summary>
internal sealed class PacketPathCarry
{
    readonly LoadedProgram _old, _next;
    /// <summary>Per packet-written set: what was carried (the old live value per key), and the keys the transaction decides.</summary>
    readonly List<(string Set, Dictionary<byte[], byte[]> Carried, HashSet<byte[]> Decided, Func<byte[], byte[]?> Convert)> _sets = new();

    PacketPathCarry(LoadedProgram old, LoadedProgram next)
    {
        _old = old;
        _next = next;
    }

    /// <summary>Carries before the swap; null when the new program writes no set the old one wrote with the same map layout.</summary>
    public static PacketPathCarry? Before(LoadedProgram old, LoadedProgram next, IReadOnlyDictionary<string, SetChange> changes)
    {
        PacketPathCarry? carry = null;
        foreach (var (set, layout) in next.Compiled.SetLayouts)
        {
            if (!layout.Set.PacketWritten || !old.Compiled.SetLayouts.TryGetValue(set, out var was) || !was.Set.PacketWritten
                || was.KeySize != layout.KeySize || next.SharesSet(old, set) || old.LiveEntries(set) is not { } live) continue;
            // the same layout, or one holding every list the old program's elements carry (see ElementLists): each value
            // converted (its tag to its list's index, the state where the longer lists leave it); else the set starts empty
            Func<byte[], byte[]?> convert;
            if (was.ValueSize == layout.ValueSize && was.Set.Data == layout.Set.Data && was.Set.ElementLists.SequenceEqual(layout.Set.ElementLists)
                && (!was.HasPacketLimits || ElementLists.SameRuleLists(was.Set, layout.Set)))
                convert = v => v;
            // (not with limits: their buckets are the old copies', see ElementLists)
            else if (!was.HasPacketLimits && ElementLists.TagMap(was, layout) is { } tags && was.Set.RuleLists.All(l => tags[was.Set.TagOf(l)] >= 0)
                && live.Values.All(v => ElementLists.Convert(was, layout, tags, v) != null))
                convert = v => ElementLists.Convert(was, layout, tags, v);
            else continue;
            var decided = new HashSet<byte[]>(ByteArrayComparer.Instance);
            if (changes.TryGetValue(set, out var change))
                foreach (var e in change.Added.Concat(change.Removed))
                    foreach (var (k, _) in layout.EntriesOf(e)) decided.Add(k);
            var carried = new Dictionary<byte[], byte[]>(ByteArrayComparer.Instance);
            foreach (var (k, v) in live)
            {
                if (decided.Contains(k)) continue;
                next.WritePacketPath(set, k, convert(v)!);
                carried[k] = v;
            }
            (carry ??= new PacketPathCarry(old, next))._sets.Add((set, carried, decided, convert));
        }
        return carry;
    }

    /// <summary>
    /// After the swap, once no run of the old program is left: its changes since <see cref="Before"/> (elements it
    /// added, renewed or deleted then) go to the new program's map where the new program did not change the key.
    /// </summary>
    public void After()
    {
        _old.WaitForReaders();
        foreach (var (set, carried, decided, convert) in _sets)
        {
            if (_old.LiveEntries(set) is not { } live || _next.LiveEntries(set) is not { } now) continue;
            foreach (var (k, v) in live)
            {
                if (decided.Contains(k) || carried.TryGetValue(k, out var c) && c.AsSpan().SequenceEqual(v)) continue;
                // the new program added or renewed it since: its value is the newer one
                if (now.TryGetValue(k, out var n) && !(carried.TryGetValue(k, out c) && convert(c)!.AsSpan().SequenceEqual(n))) continue;
                // made or changed by the old program since Before: its list is one the new program holds (ElementLists keeps
                // the old program's own and every list its live elements carried)
                if (convert(v) is { } converted) _next.WritePacketPath(set, k, converted);
            }
            foreach (var (k, c) in carried)
                if (!live.ContainsKey(k) && now.TryGetValue(k, out var n) && convert(c)!.AsSpan().SequenceEqual(n)) _next.DeletePacketPath(set, k);
        }
    }
}
