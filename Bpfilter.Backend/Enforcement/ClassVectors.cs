using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// A classifier vector map's entries as compiled (in class id order: <see cref="ClassifierTables"/> lists them so) read by
/// class id, with the vectors an edit sets beside them: <see cref="ClassifiedRunEdit"/> changes a few of tens of thousands
/// of vectors per append (issue 12), so the entries are found by binary search and the list is rebuilt once, in id
/// order, instead of copied into a dictionary, sorted and re-keyed per field.
/// </summary>
internal sealed class ClassVectors
{
    readonly IReadOnlyList<(byte[] Key, byte[] Value)> _entries;
    readonly Dictionary<int, byte[]> _set = new();
    int _maxSet = -1;

    ClassVectors(IReadOnlyList<(byte[] Key, byte[] Value)> entries) => _entries = entries;

    /// <summary>The map's entries, or null when they are not in strictly ascending id order (not as compiled).</summary>
    public static ClassVectors? Of(IReadOnlyList<(byte[] Key, byte[] Value)> entries)
    {
        for (var i = 0; i < entries.Count; i++)
            if (entries[i].Key.Length != 4 || (i > 0 && IdAt(entries, i) <= IdAt(entries, i - 1))) return null;
        return new ClassVectors(entries);
    }

    static int IdAt(IReadOnlyList<(byte[] Key, byte[] Value)> entries, int i) => BinaryPrimitives.ReadInt32LittleEndian(entries[i].Key);

    int Find(int id)
    {
        var (lo, hi) = (0, _entries.Count - 1);
        while (lo <= hi)
        {
            var mid = lo + (hi - lo) / 2;
            var at = IdAt(_entries, mid);
            if (at == id) return mid;
            if (at < id) lo = mid + 1;
            else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>The vector the map held as compiled (before this edit's <see cref="Set"/>s).</summary>
    public bool TryGetOriginal(int id, out byte[] vector)
    {
        var at = Find(id);
        vector = at < 0 ? [] : _entries[at].Value;
        return at >= 0;
    }

    /// <summary>The vector with this edit's <see cref="Set"/>s.</summary>
    public bool TryGet(int id, out byte[] vector) => _set.TryGetValue(id, out vector!) || TryGetOriginal(id, out vector);

    public bool Contains(int id) => _set.ContainsKey(id) || Find(id) >= 0;

    public void Set(int id, byte[] vector)
    {
        _set[id] = vector;
        _maxSet = Math.Max(_maxSet, id);
    }

    /// <summary>The highest class id held (-1: none).</summary>
    public int MaxId => Math.Max(_entries.Count == 0 ? -1 : IdAt(_entries, _entries.Count - 1), _maxSet);

    /// <summary>The entries after the edit, in id order (unchanged ones as they were).</summary>
    public List<(byte[] Key, byte[] Value)> Entries()
    {
        var result = new List<(byte[], byte[])>(_entries.Count + _set.Count);
        var ids = _set.Keys.ToArray();
        Array.Sort(ids);
        var s = 0;
        foreach (var e in _entries)
        {
            var id = BinaryPrimitives.ReadInt32LittleEndian(e.Key);
            for (; s < ids.Length && ids[s] < id; s++) result.Add((ClassifierLayout.Key(ids[s]), _set[ids[s]]));
            if (s < ids.Length && ids[s] == id) result.Add((e.Key, _set[ids[s++]]));
            else result.Add(e);
        }
        for (; s < ids.Length; s++) result.Add((ClassifierLayout.Key(ids[s]), _set[ids[s]]));
        return result;
    }
}
