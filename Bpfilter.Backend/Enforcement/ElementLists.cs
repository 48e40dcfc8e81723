using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The statement lists the elements of a packet-written set carry through a recompile (nft_dynset_new clones the
/// creating rule's list into the element, which keeps it whatever the rules later give new elements): a program that
/// replaces one whose rules gave other statements holds the lists its live elements carry and the replaced program's
/// own (it may still make elements until the swap), then the lists the new rules give (<see cref="Set.RuleLists"/>;
/// together <see cref="Set.PacketStatementLists"/>);
/// <see cref="PacketPathCarry"/> rewrites each element's tag to its list's index there. A list no live element carries
/// is dropped at the next recompile. The buckets of elements' limits live in the bucket map only (the rates are in the
/// code): the new program's copies share that very map when it has room for the buckets the new lists and `size` need
/// (<see cref="SharedBuckets"/>), else they get a larger one of their own and the buckets are copied into it
/// (<see cref="BucketCarry"/>); either way the elements keep their lists and buckets, as the kernel keeps them.
/// </summary>
internal static class ElementLists
{
    /// <summary>
    /// <paramref name="ruleset"/> with the element lists of each packet-written set a running program writes with a value
    /// the carry can convert (same key, data and timeouts); a set whose lists come to the ones its rules give keeps none
    /// (compiled as before), and so does a <paramref name="recreated"/> one (none of the old set's elements is carried).
    /// </summary>
    public static Ruleset For(Ruleset ruleset, IReadOnlyList<LoadedProgram> running, IReadOnlySet<string> recreated)
    {
        List<Set>? sets = null;
        for (var i = 0; i < ruleset.Sets.Count; i++)
        {
            var set = ruleset.Sets[i];
            if (!set.PacketWritten || recreated.Contains(set.Name) || !set.PacketStatementLists.IsEmpty) continue;
            var lists = Carried(set, running);
            if (lists.Count == 0 || lists.SequenceEqual(set.RuleLists)) continue;
            sets ??= ruleset.Sets.ToList();
            sets[i] = set with { PacketStatementLists = lists.ToValueList() };
        }
        return sets == null ? ruleset : ruleset with { Sets = sets.ToValueList() };
    }

    /// <summary>
    /// <paramref name="ruleset"/> with the lists an earlier process's programs held (saved with its state): each packet-written
    /// set named there whose rules' lists for new elements are all among them.
    /// </summary>
    public static Ruleset Inherit(Ruleset ruleset, IReadOnlyDictionary<string, ValueList<ValueList<Statement>>> inherited)
    {
        if (inherited.Count == 0) return ruleset;
        var sets = ruleset.Sets.Select(set => set.PacketWritten && set.PacketStatementLists.IsEmpty && inherited.TryGetValue(set.Name, out var lists)
            && set.RuleLists.All(lists.Contains) ? set with { PacketStatementLists = lists } : set).ToValueList();
        return ruleset with { Sets = sets };
    }

    /// <summary>The lists of the running program's set that live elements carry or its rules give, then <paramref name="set"/>'s rules' own; empty when no running program writes a convertible set.</summary>
    static List<ValueList<Statement>> Carried(Set set, IReadOnlyList<LoadedProgram> running)
    {
        var lists = new List<ValueList<Statement>>();
        foreach (var p in running)
        {
            if (!p.Compiled.SetLayouts.TryGetValue(set.Name, out var was) || !Convertible(was.Set, set)) continue;
            var used = new SortedSet<int>();
            foreach (var own in was.Set.RuleLists) used.Add(was.Set.TagOf(own));
            // the old program's own lists are kept (it may make elements until the swap), and those live elements carry: read
            // unless the old program holds just the lists the new rules give (nothing to drop then)
            if (was.Set.ElementLists.SequenceEqual(set.RuleLists)) used.UnionWith(Enumerable.Range(0, was.Set.ElementLists.Count));
            else
            {
                if (p.LiveEntries(set.Name) is not { } live) continue;
                foreach (var value in live.Values)
                    if (TagOf(value) is int tag) used.Add(tag);
            }
            foreach (var tag in used)
                if (tag < was.Set.ElementLists.Count) lists.Add(was.Set.ElementLists[tag]);
            foreach (var own in set.RuleLists)
                if (!lists.Contains(own)) lists.Add(own);
            // the elements' buckets go with them (the bucket map shared, or copied into a larger one: PacketPathCarry)
            return lists;
        }
        lists.AddRange(set.RuleLists);
        return lists;
    }

    /// <summary>Whether the rules of both give new elements the same lists, in the same order (so the set compiles alike).</summary>
    public static bool SameRuleLists(Set was, Set now) => was.RuleLists.SequenceEqual(now.RuleLists);

    /// <summary>
    /// The bucket map <paramref name="compiled"/> takes for its copies of the set <paramref name="spec"/> names when it makes
    /// them anew: that of <paramref name="replaced"/> (the program it replaces, whose elements of the set it carries with their
    /// stamps, PacketPathCarry) when the values convert (<see cref="Convertible"/>) and the map has room for what the new lists
    /// and `size` need (<see cref="SetLayout.BucketMaxEntries"/>), so the elements keep their buckets exactly; else null (a
    /// new, larger map, into which PacketPathCarry copies the buckets: <see cref="BucketCarry"/>). Only the replaced
    /// program's: its copies go right after the swap, and the sweep then (PacketPathCarry.Sweep) leaves the map holding the
    /// new copies' buckets alone, within the bound the new layout sized it for. Never a <paramref name="recreated"/> set's.
    /// </summary>
    public static ElementBuckets? SharedBuckets(CompiledProgram compiled, MapSpec spec, LoadedProgram replaced, IReadOnlySet<string> recreated)
    {
        if (spec.Buckets is not { } need) return null;
        foreach (var (name, now) in compiled.SetLayouts)
            if (ProgramCompiler.SetMapName(name) == spec.Name && !recreated.Contains(name) && replaced.Compiled.SetLayouts.TryGetValue(name, out var was)
                && Convertible(was.Set, now.Set) && replaced.Buckets(name) is { } buckets && buckets.Fits(need))
                return buckets;
        return null;
    }

    /// <summary>
    /// How a value of <paramref name="was"/>'s layout becomes one of <paramref name="now"/>'s when the program replacing the
    /// one holding it carries the set's elements (PacketPathCarry): unchanged for the same layout, else converted (each
    /// element's tag to its list's index, <see cref="Convert"/>); null when the elements cannot be carried. Elements with
    /// limits are carried exactly when <paramref name="bucketsKept"/> (the new copies take their buckets from the same map,
    /// or from a larger one they were copied into, stamps unchanged); otherwise only into the same layout with the same lists
    /// for new elements, where their buckets start full (no bucket map to take them from).
    /// </summary>
    public static Func<byte[], byte[]?>? Converter(SetLayout was, SetLayout now, bool bucketsKept)
    {
        var lostBuckets = was.HasPacketLimits && now.HasPacketLimits && !bucketsKept;
        if (was.ValueSize == now.ValueSize && was.Set.Data == now.Set.Data && was.Set.ElementLists.SequenceEqual(now.Set.ElementLists)
            && (!lostBuckets || SameRuleLists(was.Set, now.Set)))
            return v => v;
        // an element whose list has a limit converts only to a list of now's, which then has a limit too; every list the
        // old program's rules give is there (it may make elements until the swap)
        if (!lostBuckets && TagMap(was, now) is { } tags && was.Set.RuleLists.All(l => tags[was.Set.TagOf(l)] >= 0))
            return v => Convert(was, now, tags, v);
        return null;
    }

    /// <summary>Whether an element value of <paramref name="was"/>'s layout converts to <paramref name="now"/>'s: the same key, data and timeouts (so the same offsets before the state).</summary>
    public static bool Convertible(Set was, Set now) =>
        was.PacketWritten && now.PacketWritten && was.Key == now.Key && was.Data == now.Data && was.Timeouts == now.Timeouts;

    /// <summary>The tag of an element with statements (code bit 0), else null.</summary>
    public static int? TagOf(byte[] value)
    {
        if (value.Length < 8) return null;
        var code = BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(4));
        return (code & 1) == 0 ? null : (int)(code >> SetLayout.TagShift);
    }

    /// <summary>
    /// Per tag of <paramref name="was"/>, its list's tag in <paramref name="now"/> (-1: not there); null when the values do
    /// not convert at all.
    /// </summary>
    public static int[]? TagMap(SetLayout was, SetLayout now)
    {
        if (!Convertible(was.Set, now.Set)) return null;
        var lists = was.Set.ElementLists;
        var map = new int[lists.Count];
        for (var t = 0; t < lists.Count; t++)
        {
            map[t] = -1;
            for (var u = 0; u < now.Set.ElementLists.Count; u++)
                if (now.Set.ElementLists[u] == lists[t]) map[t] = u;
        }
        return map;
    }

    /// <summary>
    /// An element's value of <paramref name="was"/>'s layout in <paramref name="now"/>'s: the code (its tag mapped), expiry,
    /// timeout and the state of its own list where they were, the rest zero, a map's data at its new place. Null when its
    /// list is not in <paramref name="now"/>.
    /// </summary>
    public static byte[]? Convert(SetLayout was, SetLayout now, int[] tags, byte[] value)
    {
        var tag = TagOf(value);
        if (tag is int t && (t >= tags.Length || tags[t] < 0)) return null;
        var converted = new byte[now.ValueSize];
        // an element without statements holds nothing after the code, expiry and timeout (zeros)
        var end = tag is int own ? was.PacketStateOffset(own, was.ElementList(own).Count) : was.PacketStateOffset(0, 0);
        end = Math.Min(end, was.MapDataBytes > 0 ? was.MapDataOffset : was.ValueSize);
        var room = now.MapDataBytes > 0 ? now.MapDataOffset : now.ValueSize;
        // what does not fit must be zeros (a code word of 0 where the new layout holds none)
        if (end > room && value.AsSpan(room, end - room).IndexOfAnyExcept((byte)0) >= 0) return null;
        value.AsSpan(0, Math.Min(end, room)).CopyTo(converted);
        if (tag is int old)
            BinaryPrimitives.WriteUInt32LittleEndian(converted.AsSpan(4),
                (BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(4)) & ((1u << SetLayout.TagShift) - 1)) | (uint)tags[old] << SetLayout.TagShift);
        if (was.MapDataBytes > 0)
            value.AsSpan(was.MapDataOffset, was.MapDataBytes).CopyTo(converted.AsSpan(now.MapDataOffset));
        return converted;
    }
}
