using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Element updates for a program that stays loaded: when a recompile yields the same instructions and
/// the same map layout (only set contents changed), the set maps are updated in place and no program
/// is reloaded. Each map update is atomic per element, as nf_tables' set backends are for the packet path.
/// </summary>
internal sealed record MapDiff(IReadOnlyList<MapDiff.MapChange> Changes)
{
    public sealed record MapChange(BpfMap Map, IReadOnlyList<byte[]> Deletes, IReadOnlyList<(byte[] Key, byte[] Value)> Upserts);

    public int Count => Changes.Sum(c => c.Deletes.Count + c.Upserts.Count);

    /// <summary>Adds first, then removals, so an element that moves between prefixes never leaves a gap.</summary>
    public void Apply()
    {
        foreach (var c in Changes)
        {
            foreach (var (k, v) in c.Upserts) c.Map.Update(k, v);
            foreach (var k in c.Deletes) c.Map.Delete(k);
        }
    }

    /// <summary>The in-place update from <paramref name="current"/> to <paramref name="next"/>, or null when the program must be reloaded.</summary>
    public static MapDiff? Between(LoadedProgram loaded, CompiledProgram current, CompiledProgram next)
    {
        if (current.ProgramType != next.ProgramType || current.AttachType != next.AttachType) return null;
        if (current.Maps.Count != next.Maps.Count) return null;
        if (current.CounterSlots.Count != next.CounterSlots.Count
            || current.CounterSlots.Any(kv => !next.CounterSlots.TryGetValue(kv.Key, out var s) || s != kv.Value)) return null;
        for (int i = 0; i < current.Maps.Count; i++)
        {
            var (a, b) = (current.Maps[i], next.Maps[i]);
            if (a.Name != b.Name || a.Type != b.Type || a.KeySize != b.KeySize || a.ValueSize != b.ValueSize) return null;
            if (a.Name == CompiledProgram.CountersMap && a.MaxEntries != b.MaxEntries) return null;
        }
        if (!SameCode(current, next)) return null;
        var changes = new List<MapChange>();
        for (int i = 0; i < current.Maps.Count; i++)
        {
            var (a, b) = (current.Maps[i], next.Maps[i]);
            if (a.Name == CompiledProgram.CountersMap) continue;
            var map = loaded.SetMap(a.Name["set:".Length..]);
            if (map == null || b.Entries.Count > map.MaxEntries) return null;
            var old = new Dictionary<byte[], byte[]>(a.Entries.Count, ByteArrayComparer.Instance);
            foreach (var (k, v) in a.Entries) old[k] = v;
            var upserts = new List<(byte[], byte[])>();
            var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
            foreach (var (k, v) in b.Entries)
            {
                seen.Add(k);
                if (!old.TryGetValue(k, out var ov) || !ov.AsSpan().SequenceEqual(v)) upserts.Add((k, v));
            }
            var deletes = a.Entries.Select(e => e.Key).Where(k => !seen.Contains(k)).ToList();
            if (upserts.Count + deletes.Count > 0) changes.Add(new MapChange(map, deletes, upserts));
        }
        return new MapDiff(changes);
    }

    /// <summary>Same instructions once linked, map references compared by position in the map list.</summary>
    static bool SameCode(CompiledProgram a, CompiledProgram b)
    {
        int Fd(CompiledProgram p, string name)
        {
            for (int i = 0; i < p.Maps.Count; i++) if (p.Maps[i].Name == name) return 1000 + i;
            return -1;
        }
        return Linker.Link(a.Instructions, n => Fd(a, n)).AsSpan().SequenceEqual(Linker.Link(b.Instructions, n => Fd(b, n)));
    }
}

/// <summary>Byte arrays compared by contents (map keys).</summary>
internal sealed class ByteArrayComparer : IEqualityComparer<byte[]>
{
    public static readonly ByteArrayComparer Instance = new();
    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
    public int GetHashCode(byte[] b)
    {
        var h = new HashCode();
        h.AddBytes(b);
        return h.ToHashCode();
    }
}
