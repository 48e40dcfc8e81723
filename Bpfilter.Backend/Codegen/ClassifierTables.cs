using System.Buffers.Binary;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The maps every classifier of one program shares (a program may use at most 64 maps, and 100,000
/// rules are 25 classifiers): per field a class map and a vector map, and one rule map. Each
/// classifier gets a slot per field (array keys: slot × 2^bits + value; trie keys: {32 + prefix
/// length, slot, value}) and a base for its rule indexes (the sum of the earlier classifiers' rule capacities).
/// <para>
/// Issue 12: nothing in the code depends on the rules' values. Class maps hold program-wide class ids (the
/// vector map's keys) XOR the classifier's slot; the class of a packet lacking the field is the slot (ids below
/// <see cref="ReservedClasses"/> are those), every other id is handed out here. With a <see cref="ClassIdHint"/>
/// (the class maps of the program running now) a class keeps the id its first value had, so adding or deleting
/// a rule rewrites the entries whose class changed rather than renumbering every class. The maps are
/// double-buffered like set maps: an edit is written to the standby copies and switched with the generation.
/// </para>
/// </summary>
internal sealed class ClassifierTables(ClassIdHint? hint = null)
{
    /// <summary>Class ids kept for the classes of packets lacking a field, one per slot: a program's classifiers reading one field.</summary>
    public const int ReservedClasses = 64;

    private readonly List<FieldTables> _fields = new();
    private readonly List<(int Index, byte[] Value)> _rules = new();
    private int _ruleCapacity;

    /// <summary>Where a classifier's entries are: per dimension (map index, slot, class of a packet lacking the field), and its first rule.</summary>
    public sealed record Placement(IReadOnlyList<(int Map, int Slot, int Absent)> Dimensions, int RuleBase);

    private sealed class FieldTables(Field field)
    {
        public Field Field { get; } = field;
        public int Slots { get; set; }
        public List<(byte[] Key, byte[] Value)> ClassEntries { get; } = new();
        /// <summary>Class id to its vector (of <see cref="ClassifierLayout.SummaryWords"/> + the classifier's words).</summary>
        public SortedDictionary<int, (ClassifierLayout.Dimension Dim, int Class)> Vectors { get; } = new();
        public int Words { get; set; }
        public bool IsArray => Field.Bits <= ClassifierLayout.MaxArrayBits;
    }

    public bool IsEmpty => _ruleCapacity == 0;

    /// <summary>A running program's layout that <paramref name="classifier"/>'s can be taken from (null: none, or no hint).</summary>
    public ClassifierLayout? LayoutOf(ClassifierVerdict classifier) => hint?.LayoutOf(classifier);

    public Placement Add(ClassifierLayout layout)
    {
        var dims = new List<(int, int, int)>();
        foreach (var d in layout.Dimensions)
        {
            var map = _fields.FindIndex(f => f.Field == d.Field);
            if (map < 0) { _fields.Add(new FieldTables(d.Field)); map = _fields.Count - 1; }
            var t = _fields[map];
            var slot = t.Slots++;
            if (slot >= ReservedClasses) throw new CodegenException($"{layout.Name}: at most {ReservedClasses} classifiers of a program read field {d.Field}");
            var ids = t.IsArray ? AddArray(t, map, d, slot) : AddTrie(t, map, d, slot);
            for (var c = 0; c < ids.Length; c++) t.Vectors[ids[c]] = (d, c);
            t.Words = Math.Max(t.Words, layout.Words);
            dims.Add((map, slot, ids[d.Absent]));
        }
        var ruleBase = _ruleCapacity;
        for (var r = 0; r < layout.RuleValues.Count; r++) _rules.Add((ruleBase + r, layout.RuleValues[r]));
        _ruleCapacity += 64 * layout.Words;
        return new Placement(dims, ruleBase);
    }

    /// <summary>
    /// An array field's entries: every value's class, keyed slot × 2^bits + value and stored XOR the slot (the absent
    /// class, the slot, is then 0, which arrays are filled with, so it is not written). One key per value written and
    /// one stored value per class (issue 12: a key per value made twice more and a value per entry were most of the
    /// classifier's allocations, 65,536 of each per 16-bit field).
    /// </summary>
    private int[] AddArray(FieldTables t, int map, ClassifierLayout.Dimension d, int slot)
    {
        var classes = d.ArrayClasses;
        var baseKey = slot << t.Field.Bits;
        var scratch = new byte[4];
        var ids = ClassIds(t, map, d, slot, classes.Length, x =>
        {
            BinaryPrimitives.WriteInt32LittleEndian(scratch, baseKey + x);
            return scratch;
        }, x => classes[x]);
        var stored = new Dictionary<int, byte[]>();
        for (var x = 0; x < classes.Length; x++)
        {
            var s = ids[classes[x]] ^ slot;
            if (s == 0) continue;
            if (!stored.TryGetValue(s, out var value)) stored[s] = value = ClassifierLayout.Key(s);
            t.ClassEntries.Add((ClassifierLayout.Key(baseKey + x), value));
        }
        return ids;
    }

    /// <summary>A trie field's entries: {prefix length + 32, slot (big-endian), value}, the slot a leading exact part of every prefix.</summary>
    private int[] AddTrie(FieldTables t, int map, ClassifierLayout.Dimension d, int slot)
    {
        var keys = new List<byte[]>(d.ClassEntries.Count);
        foreach (var (key, _) in d.ClassEntries)
        {
            var k = new byte[8 + t.Field.Bytes];
            BinaryPrimitives.WriteUInt32LittleEndian(k, BinaryPrimitives.ReadUInt32LittleEndian(key) + 32);
            BinaryPrimitives.WriteUInt32BigEndian(k.AsSpan(4), (uint)slot);
            key.AsSpan(4).CopyTo(k.AsSpan(8));
            keys.Add(k);
        }
        var ids = ClassIds(t, map, d, slot, keys.Count, e => keys[e], e => d.ClassEntries[e].Class);
        for (var e = 0; e < keys.Count; e++) t.ClassEntries.Add((keys[e], ClassifierLayout.Key(ids[d.ClassEntries[e].Class] ^ slot)));
        return ids;
    }

    /// <summary>
    /// Program-wide ids of a dimension's local classes: the absent class is the slot; another class takes the id the
    /// running program gave the first of its entries (<paramref name="entries"/> of them, each with its key in the map
    /// and its local class) that had one no class took yet, else the lowest free id.
    /// </summary>
    private int[] ClassIds(FieldTables t, int map, ClassifierLayout.Dimension d, int slot, int entries, Func<int, byte[]> keyOf, Func<int, int> classOf)
    {
        var ids = new int[d.ClassCount];
        Array.Fill(ids, -1);
        ids[d.Absent] = slot;
        var mine = new HashSet<int> { slot };
        var before = hint?.ClassMap(ClassMap(map));
        if (before != null)
            for (var e = 0; e < entries; e++)
            {
                var c = classOf(e);
                if (ids[c] >= 0) continue;
                // an array entry missing from the record is zero: the slot's absent class, which is never taken
                var was = (before.TryGetValue(keyOf(e), out var v) ? BinaryPrimitives.ReadInt32LittleEndian(v) : 0) ^ slot;
                if (was >= ReservedClasses && !t.Vectors.ContainsKey(was) && mine.Add(was)) ids[c] = was;
            }
        var taken = t.Vectors.Keys.Concat(mine).ToHashSet();
        var next = ReservedClasses;
        for (var c = 0; c < ids.Length; c++)
        {
            if (ids[c] >= 0) continue;
            while (taken.Contains(next)) next++;
            ids[c] = next;
            taken.Add(next);
        }
        return ids;
    }

    /// <summary>Vectors a vector map has room for with ids up to <paramref name="used"/>: a quarter more, for classes an edit adds (a preallocated array: not a power of two).</summary>
    internal static int VectorCapacity(int used) => used + Math.Max(64, used / 4);

    public static string ClassMap(int map) => $"cls:f{map}";
    public static string VectorMap(int map) => $"cls:v{map}";
    public const string RuleMap = "cls:rules";

    /// <summary>Whether a map is one of the classifier tables (double-buffered, its ids kept through <see cref="ClassIdHint"/>).</summary>
    public static bool IsClassifierMap(string map) => map.StartsWith("cls:", StringComparison.Ordinal);

    /// <summary>The maps, each double-buffered (switched with the set maps' generation) and sized with room for edits.</summary>
    public IEnumerable<MapSpec> MapSpecs()
    {
        for (var i = 0; i < _fields.Count; i++)
        {
            var t = _fields[i];
            yield return (t.IsArray
                ? new MapSpec(ClassMap(i), BpfMapType.Array, 4, 4, t.Slots << t.Field.Bits, t.ClassEntries)
                : new MapSpec(ClassMap(i), BpfMapType.LpmTrie, 8 + t.Field.Bytes, 4, CounterLayout.Capacity(t.ClassEntries.Count), t.ClassEntries))
                with { DoubleBuffered = true };
            var vectors = t.Vectors.Select(v => (ClassifierLayout.Key(v.Key), v.Value.Dim.VectorValue(v.Value.Class, t.Words))).ToList();
            yield return new MapSpec(VectorMap(i), BpfMapType.Array, 4, 8 * (ClassifierLayout.SummaryWords + t.Words),
                VectorCapacity(t.Vectors.Keys.Max() + 1), vectors) { DoubleBuffered = true };
        }
        yield return new MapSpec(RuleMap, BpfMapType.Array, 4, 8, _ruleCapacity, _rules.Select(r => (ClassifierLayout.Key(r.Index), r.Value)).ToList())
        {
            DoubleBuffered = true,
        };
    }
}

/// <summary>
/// The class maps of the program running at an attach point (what they hold now), given to the compiler so classes
/// keep their ids (<see cref="ClassifierTables"/>): a recompile after one rule changed then differs in a few entries.
/// Only entries change with it, never the code.
/// </summary>
public sealed class ClassIdHint(Func<string, IReadOnlyDictionary<byte[], byte[]>?> classMap)
{
    public IReadOnlyDictionary<byte[], byte[]>? ClassMap(string map) => classMap(map);

    /// <summary>The layouts the running program's classifiers were compiled with (<see cref="CompiledProgram.ClassifierLayouts"/>).</summary>
    internal IReadOnlyList<ClassifierLayout> Layouts { get; init; } = [];

    /// <summary>
    /// The running program's layout of a classifier that <paramref name="classifier"/> is, or is the first rules of
    /// (<see cref="ClassifierLayout.Extends"/>): its classes are taken, or cut to those rules.
    /// </summary>
    internal ClassifierLayout? LayoutOf(ClassifierVerdict classifier) => Layouts.FirstOrDefault(l => l.Extends(classifier));

    public static ClassIdHint Of(Loader.LoadedProgram running) => new(running.Entries) { Layouts = running.Compiled.ClassifierLayouts };
}
