using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Set map and classifier table updates for a program that stays loaded: either computed from a recompile that
/// yields the same instructions and the same map layout (only set contents or classified rules changed), or from element deltas
/// encoded with the program's own set layouts. Applied through <see cref="SetBatch"/>: packets see a
/// whole batch or none of it.
/// </summary>
internal sealed record MapDiff(LoadedProgram Program, IReadOnlyList<MapDiff.MapChange> Changes)
{
    public sealed record MapChange(string Map, IReadOnlyList<byte[]> Deletes, IReadOnlyList<(byte[] Key, byte[] Value)> Upserts);

    public int Count => Changes.Sum(c => c.Deletes.Count + c.Upserts.Count);

    /// <summary>The changes for <see cref="SetBatch.Apply"/> (adds first, then removals, so an element that moves between prefixes never leaves a gap).</summary>
    public IEnumerable<SetBatch.Change> Batch => Changes.Select(c => new SetBatch.Change(Program, c.Map, c.Deletes, c.Upserts));

    /// <summary>The in-place update from what <paramref name="loaded"/> runs to <paramref name="next"/>, or null when the program must be reloaded.</summary>
    public static MapDiff? Between(LoadedProgram loaded, CompiledProgram next)
    {
        var current = loaded.Compiled;
        if (current.ProgramType != next.ProgramType || current.AttachType != next.AttachType) return null;
        if (current.Maps.Count != next.Maps.Count) return null;
        // a counter keeps its slot (compiled with the running layout, see CounterLayout); a new one takes a slot
        // no counter of this program held, within the counter array it was loaded with
        foreach (var (id, slot) in next.CounterSlots)
            if ((current.CounterSlots.TryGetValue(id, out var was) && was != slot) || slot >= loaded.CounterCapacity) return null;
        if (next.CounterSlotsUsed < current.CounterSlotsUsed) return null;
        for (int i = 0; i < current.Maps.Count; i++)
        {
            var (a, b) = (current.Maps[i], next.Maps[i]);
            if (a.Name != b.Name || a.Type != b.Type || a.KeySize != b.KeySize || a.ValueSize != b.ValueSize || a.Flags != b.Flags) return null;
            if (!SamePacketWrites(a, b)) return null;
            // maps filled once at load are not diffed: other contents need a reload
            if (!a.DoubleBuffered && !SameEntries(a, b)) return null;
        }
        if (!SameCode(current, next)) return null;
        // a log statement's prefix, level and flags live beside the program (its events carry only an id)
        if (current.LogConfigs.Count != next.LogConfigs.Count
            || current.LogConfigs.Any(kv => !next.LogConfigs.TryGetValue(kv.Key, out var c) || c != kv.Value)) return null;
        var changes = new List<MapChange>();
        for (int i = 0; i < current.Maps.Count; i++)
        {
            var (a, b) = (current.Maps[i], next.Maps[i]);
            if (!a.DoubleBuffered) continue;
            var map = loaded.CurrentCopy(a.Name);
            var old = loaded.Entries(a.Name);
            if (map == null || old == null || b.Entries.Count > map.MaxEntries) return null;
            // an array's keys are its indexes (classifier tables): each within the array the program was loaded with
            if (map.Type == BpfMapType.Array && b.Entries.Any(e => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(e.Key) >= map.MaxEntries)) return null;
            var upserts = new List<(byte[], byte[])>();
            var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
            foreach (var (k, v) in b.Entries)
            {
                seen.Add(k);
                if (!old.TryGetValue(k, out var ov) || !ov.AsSpan().SequenceEqual(v)) upserts.Add((k, v));
            }
            var deletes = old.Keys.Where(k => !seen.Contains(k)).ToList();
            if (upserts.Count + deletes.Count > 0) changes.Add(new MapChange(a.Name, deletes, upserts));
        }
        return new MapDiff(loaded, changes);
    }

    /// <summary>
    /// This diff with each set map the program writes from the packet path changed by the transaction's own element
    /// changes alone: the compiled contents hold the packet path's elements as of an earlier moment, and diffing
    /// them would undo what the packet path did since (or drop the timeout it gave an element). Null when those
    /// changes cannot be exact map updates (then the program is loaded anew).
    /// </summary>
    public MapDiff? WithPacketPath(IReadOnlyDictionary<string, SetChange> changes)
    {
        // the common case (an unchanged unit at every commit): nothing to keep out, nothing to add
        if (Changes.Count == 0 && changes.Count == 0) return this;
        var kept = new List<MapChange>();
        foreach (var c in Changes)
            if (!Program.Compiled.SetLayouts.Values.Any(l => l.Set.PacketWritten && ProgramCompiler.SetMapName(l.Set.Name) == c.Map)) kept.Add(c);
        foreach (var layout in Program.Compiled.SetLayouts.Values.Where(l => l.Set.PacketWritten))
        {
            if (!changes.TryGetValue(layout.Set.Name, out var change)) continue;
            if (OfElements(Program, layout.Set.Name, change.Added, change.Removed) is not { } d) return null;
            kept.AddRange(d.Changes);
        }
        return new MapDiff(Program, kept);
    }

    /// <summary>
    /// A set map the packet path writes is sized to the set's `size` (the map refusing the element past it is where
    /// nft_dynset breaks the rule), with its element statements and limit buckets: another size, other statements or
    /// other buckets need the maps made anew, so the program is reloaded and carries its elements (PacketPathCarry).
    /// </summary>
    static bool SamePacketWrites(MapSpec a, MapSpec b) =>
        a.PacketWritten == b.PacketWritten
        && (!a.PacketWritten || a.MaxEntries == b.MaxEntries && a.PacketStatements == b.PacketStatements && Equals(a.Buckets, b.Buckets));

    private static bool SameEntries(MapSpec a, MapSpec b) =>
        a.MaxEntries == b.MaxEntries && a.Entries.Count == b.Entries.Count
        && a.Entries.Zip(b.Entries).All(p => p.First.Key.AsSpan().SequenceEqual(p.Second.Key) && p.First.Value.AsSpan().SequenceEqual(p.Second.Value));

    /// <summary>
    /// The updates that add and remove elements of one set in <paramref name="loaded"/>, encoded with
    /// the layout the program was compiled with; null when they cannot be exact map updates (the
    /// element needs a reload: a verdict the program lacks, a range in a hash-map set, a map that
    /// would overflow). An empty diff when the program does not use the set.
    /// </summary>
    public static MapDiff? OfElements(LoadedProgram loaded, string set, IReadOnlyList<Ir.SetElement> added, IReadOnlyList<Ir.SetElement> removed)
    {
        if (!loaded.Compiled.SetLayouts.TryGetValue(set, out var layout)) return new MapDiff(loaded, []);
        var name = ProgramCompiler.SetMapName(set);
        var map = loaded.SetMap(set);
        var entries = loaded.Entries(name);
        if (map == null || entries == null) return null;
        var upserts = new List<(byte[], byte[])>();
        var deletes = new List<byte[]>();
        try
        {
            foreach (var e in added) upserts.AddRange(layout.EntriesOf(e));
            foreach (var e in removed) deletes.AddRange(layout.EntriesOf(e).Select(x => x.Key));
        }
        catch (CodegenException)
        {
            return null;
        }
        var grown = upserts.Count(u => !entries.ContainsKey(u.Item1));
        if (entries.Count + grown > map.MaxEntries) return null;
        return new MapDiff(loaded, [new MapChange(name, deletes, upserts)]);
    }

    /// <summary>
    /// Same instructions once linked, map references compared by position in the map list; for a split
    /// program every segment and the same prog-array slots; the same global functions.
    /// </summary>
    static bool SameCode(CompiledProgram a, CompiledProgram b)
    {
        int Fd(CompiledProgram p, string name)
        {
            for (int i = 0; i < p.Maps.Count; i++) if (p.Maps[i].Name == name) return 1000 + i;
            return -1;
        }
        bool Same(System.Collections.Immutable.ImmutableArray<Bpf.Instruction> x, System.Collections.Immutable.ImmutableArray<Bpf.Instruction> y) =>
            Linker.Link(x, n => Fd(a, n)).AsSpan().SequenceEqual(Linker.Link(y, n => Fd(b, n)));
        return Same(a.Instructions, b.Instructions) && a.Segments.Length == b.Segments.Length
            && a.Segments.Zip(b.Segments).All(s => Same(s.First, s.Second))
            && a.TailCallSlots.Count == b.TailCallSlots.Count && a.TailCallSlots.All(t => b.TailCallSlots.GetValueOrDefault(t.Key) == t.Value)
            // a chain tail's slot is not code of the program: a running tail is emptied at the commit (Enforcer, Step.TailSwap)
            && (a.Tail == null) == (b.Tail == null)
            // global or static: the same code is loaded with other BTF
            && a.Functions.Count == b.Functions.Count && a.Functions.All(f => b.Functions.TryGetValue(f.Key, out var g) && g == f.Value);
    }
}
