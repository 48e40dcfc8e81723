using System.Buffers.Binary;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The maps every classifier of one program shares (a program may use at most 64 maps, and 100,000
/// rules are 25 classifiers): per field a class map and a vector map, and one rule map. Each
/// classifier gets a slot per field (array keys: slot × 2^bits + value; trie keys: {32 + prefix
/// length, slot, value}), a base added to its local class ids, and a base for its rule indexes.
/// </summary>
internal sealed class ClassifierTables
{
    private readonly List<FieldTables> _fields = new();
    private readonly List<byte[]> _rules = new();

    /// <summary>Where a classifier's entries are: per dimension (map index, slot, class base), and its first rule.</summary>
    public sealed record Placement(IReadOnlyList<(int Map, int Slot, int ClassBase)> Dimensions, int RuleBase);

    private sealed class FieldTables(Field field)
    {
        public Field Field { get; } = field;
        public int Slots { get; set; }
        public List<(byte[] Key, byte[] Value)> ClassEntries { get; } = new();
        /// <summary>Class vectors of each classifier (padded to the widest at the end).</summary>
        public List<(ClassifierLayout.Dimension Dim, int Words)> Vectors { get; } = new();
        public int Classes { get; set; }
        public bool IsArray => Field.Bits <= ClassifierLayout.MaxArrayBits;
    }

    public bool IsEmpty => _rules.Count == 0;

    public Placement Add(ClassifierLayout layout)
    {
        var dims = new List<(int, int, int)>();
        foreach (var d in layout.Dimensions)
        {
            var map = _fields.FindIndex(f => f.Field == d.Field);
            if (map < 0) { _fields.Add(new FieldTables(d.Field)); map = _fields.Count - 1; }
            var t = _fields[map];
            var slot = t.Slots++;
            foreach (var (key, cls) in d.ClassEntries)
            {
                byte[] k;
                if (t.IsArray)
                {
                    k = ClassifierLayout.Key((slot << d.Field.Bits) + BinaryPrimitives.ReadInt32LittleEndian(key));
                }
                else
                {
                    // {prefix length + 32, slot (big-endian), value}: the slot is a leading exact part of every prefix
                    k = new byte[8 + d.Field.Bytes];
                    BinaryPrimitives.WriteUInt32LittleEndian(k, BinaryPrimitives.ReadUInt32LittleEndian(key) + 32);
                    BinaryPrimitives.WriteUInt32BigEndian(k.AsSpan(4), (uint)slot);
                    key.AsSpan(4).CopyTo(k.AsSpan(8));
                }
                t.ClassEntries.Add((k, ClassifierLayout.Key(cls)));
            }
            dims.Add((map, slot, t.Classes));
            t.Classes += d.Vectors.Count;
            t.Vectors.Add((d, layout.Words));
        }
        var ruleBase = _rules.Count;
        _rules.AddRange(layout.RuleValues);
        return new Placement(dims, ruleBase);
    }

    public static string ClassMap(int map) => $"cls:f{map}";
    public static string VectorMap(int map) => $"cls:v{map}";
    public const string RuleMap = "cls:rules";

    public IEnumerable<MapSpec> MapSpecs()
    {
        for (var i = 0; i < _fields.Count; i++)
        {
            var t = _fields[i];
            yield return t.IsArray
                ? new MapSpec(ClassMap(i), BpfMapType.Array, 4, 4, t.Slots << t.Field.Bits, t.ClassEntries)
                : new MapSpec(ClassMap(i), BpfMapType.LpmTrie, 8 + t.Field.Bytes, 4, Math.Max(1, t.ClassEntries.Count), t.ClassEntries);
            var words = t.Vectors.Max(v => v.Words);
            var vectors = t.Vectors.SelectMany(v => v.Dim.VectorValues(words)).Select((v, c) => (ClassifierLayout.Key(c), v)).ToList();
            yield return new MapSpec(VectorMap(i), BpfMapType.Array, 4, 8 * (ClassifierLayout.SummaryWords + words), vectors.Count, vectors);
        }
        yield return new MapSpec(RuleMap, BpfMapType.Array, 4, 8, _rules.Count, _rules.Select((v, r) => (ClassifierLayout.Key(r), v)).ToList());
    }
}
