using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The tables of one <see cref="ClassifierVerdict"/> (bit-vector search, as bpf-iptables'
/// linear bit-vector search with aggregated bit vectors), before <see cref="ClassifierTables"/> places
/// them in the program's shared maps. Per field: the packet's value maps to a class (through an array
/// indexed by the value for fields of at most 16 bits; through an LPM trie of every prefix the rules
/// use for wider ones, whose longest match decides which rules admit the value), and each class to the
/// bit vector of the rules it admits, led by summary words (a bit per word that has a rule).
/// Classes are deduplicated; class 0 holds the rules without a matcher on the field, the class of a
/// packet that lacks it, and its vector is ORed into every other class's by the program past the folded words (where
/// the others hold only the rules with a matcher admitting the class; before them, the rules without one too). The packet ANDs the summaries, then for each candidate word the words of
/// every field: the lowest set bit is the first rule that admits the packet, whose verdict code and
/// counter slot are in <see cref="RuleValues"/>. At most <see cref="MaxRules"/> rules.
/// </summary>
internal sealed class ClassifierLayout
{
    /// <summary>Summary words leading every vector: bit w % 64 of word w / 64 is set when word w has a rule.</summary>
    public const int SummaryWords = 4;

    /// <summary>Rules one classifier holds: 64 per word, a word per summary bit.</summary>
    public const int MaxRules = 64 * 64 * SummaryWords;

    /// <summary>The widest field read through an array indexed by value (65,536 entries).</summary>
    public const int MaxArrayBits = 16;

    /// <param name="earlier">
    /// A layout of a classifier that starts with <paramref name="classifier"/>'s rules (<see cref="Extends"/>, found by
    /// <see cref="ClassIdHint.LayoutOf"/>): its dimensions are taken when the rules are the same, and its class arrays cut
    /// to the first rules otherwise (<see cref="Dimension"/>), as they depend on the rules alone
    /// (the rule values, on counter slots, are made here). Issue 12: a rule appended after a classified run that makes a
    /// grouped run of the run's last rules recompiles the chain, whose classifier is then the one compiled before less
    /// those rules; laying it out again was a quarter of that recompile.
    /// </param>
    public ClassifierLayout(ClassifierVerdict classifier, string name, Func<ulong, int> counterSlot, ClassifierLayout? earlier = null)
    {
        Classifier = classifier;
        Name = name;
        var n = classifier.Rules.Count;
        if (n > MaxRules) throw new CodegenException($"{name}: a classifier holds at most {MaxRules} rules, not {n}");
        Words = CapacityWords(n);
        // in a fixed order, so the dispatch does not change when a rule moves the first use of a verdict
        VerdictCodes = classifier.Rules.Select(r => r.Verdict).Distinct().OrderBy(VerdictRank).ThenBy(v => v.ToString(), StringComparer.Ordinal).ToList();
        if (earlier != null && !earlier.Extends(classifier)) throw new ArgumentException($"{name}: the layout to take is another classifier's");
        TakenFromEarlier = earlier != null;
        Dimensions = classifier.Fields.Select((f, d) => earlier == null ? new Dimension(this, f, d)
            : earlier.Classifier.Rules.Count == n ? earlier.Dimensions[d]
            : earlier.Dimensions[d].IsArray ? new Dimension(this, earlier.Dimensions[d])
            : new Dimension(this, f, d)).ToList();
        var rules = new List<byte[]>();
        for (var r = 0; r < n; r++)
        {
            var rule = classifier.Rules[r];
            var value = new byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(value, (uint)VerdictCodes.IndexOf(rule.Verdict) + 1);
            var counters = rule.Statements.OfType<CounterStatement>().ToList();
            if (counters.Count > 1 || rule.Statements.Count != counters.Count)
                throw new CodegenException($"{rule.Origin ?? name}: a classified rule has one counter at most and no other statement");
            if (counters.Count == 1) BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), (uint)counterSlot(counters[0].Id) + 1);
            rules.Add(value);
        }
        RuleValues = rules;
    }

    /// <summary>Rule words per granule of <see cref="CapacityWords"/>: 1,024 rules.</summary>
    public const int WordGranule = 16;

    /// <summary>
    /// The words every vector has room for with <paramref name="rules"/> rules: rounded up to a <see cref="WordGranule"/>,
    /// so a rule added or deleted within the granule leaves the code (the word bound, the rule map's bases) as it was and
    /// the edit is map updates (issue 12). A function of the rule count alone: a restart compiles the same code.
    /// </summary>
    public static int CapacityWords(int rules) => Math.Min(64 * SummaryWords, Math.Max(1, (rules + 64 * WordGranule - 1) / (64 * WordGranule)) * WordGranule);

    /// <summary>
    /// The leading rule words in which every class's vector holds the rules without a matcher on the field (as the absent
    /// class's does), so the program reads them without ORing the match-anything vector in: all but the last
    /// <see cref="WordGranule"/> of <paramref name="words"/>, the granule appended rules take (issue 12: ORing it into
    /// every word read doubled the scan's loads, 95 to 208 ns per ClassBench packet at 10,000 rules). A function of
    /// <see cref="CapacityWords"/> alone: an append that keeps the words keeps it, and every rule it folds was compiled.
    /// </summary>
    public static int Folded(int words) => words - WordGranule;

    /// <summary>
    /// Whether this layout's classifier is <paramref name="classifier"/> with rules appended or none, read through the same
    /// fields and with the same words: the classes of <paramref name="classifier"/> are then this one's cut to its rules.
    /// </summary>
    public bool Extends(ClassifierVerdict classifier)
    {
        var (mine, theirs) = (Classifier.Rules, classifier.Rules);
        if (theirs.Count > mine.Count || CapacityWords(theirs.Count) != Words || Classifier.Fields != classifier.Fields
            || Classifier.Dimensions != classifier.Dimensions) return false;
        for (var r = 0; r < theirs.Count; r++)
            if (!mine[r].Equals(theirs[r])) return false;
        return true;
    }

    static int VerdictRank(Verdict v) => v switch { AcceptVerdict => 0, DropVerdict => 1, ReturnVerdict => 2, _ => 3 };

    public ClassifierVerdict Classifier { get; }
    /// <summary>The classes were taken from an earlier layout (not kept: it would hold on to every layout before it).</summary>
    internal bool TakenFromEarlier { get; }
    public string Name { get; }
    /// <summary>64-bit words of rules per vector (after the summary words): the rules' with room to spare (<see cref="CapacityWords"/>).</summary>
    public int Words { get; }
    /// <summary>Rule words read without the match-anything vectors: <see cref="Folded"/>.</summary>
    public int FoldedWords => Folded(Words);
    public List<Verdict> VerdictCodes { get; }
    public IReadOnlyList<Dimension> Dimensions { get; }
    /// <summary>Per rule: {verdict code (1-based), counter slot + 1 (0: none)}.</summary>
    public IReadOnlyList<byte[]> RuleValues { get; }

    internal static byte[] Key(int index)
    {
        var key = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)index);
        return key;
    }

    /// <summary>One field of the classifier: its classes, how values map to them, and their rule vectors.</summary>
    internal sealed class Dimension
    {
        private readonly ClassifierLayout _owner;
        /// <summary>
        /// Each class's vector as its map value (summary words, then the rule words), found by the rule words alone: the
        /// sweep looks up its running vector as a span (issue 12: a copy per class kept as the key, then another as the
        /// value, was a third of a ClassBench-style load's classifier allocations).
        /// </summary>
        private readonly Dictionary<byte[], int> _ids = new(VectorComparer.Instance);
        private readonly List<byte[]> _values = new();

        public Dimension(ClassifierLayout owner, Field field, int index)
        {
            _owner = owner;
            Field = field;
            Index = index;
            if (field.Bits > 32 || field.Bits % 8 != 0) throw new CodegenException($"{owner.Name}: field {field} cannot be classified");
            IsArray = field.Bits <= MaxArrayBits;
            var rules = owner.Classifier.Rules;
            var any = new ulong[owner.Words];
            for (var r = 0; r < rules.Count; r++)
                if (rules[r].Admits[index] is null) Set(any, r);
            // classes by the rules constraining the field and the folded rules without a matcher on it (those before
            // FoldedWords, in every class's vector); the rules without a matcher after them are in the absent class's
            // vector alone, which the program ORs in there (the same classes: a class's vector was its own rules and
            // every rule without a matcher, so the numbering is as when every vector held them all)
            var folded = new ulong[owner.Words];
            for (var r = 0; r < Math.Min(rules.Count, 64 * owner.FoldedWords); r++)
                if (rules[r].Admits[index] is null) Set(folded, r);
            Absent = ClassOf(folded);
            if (IsArray) ArrayClasses = ArrayEntries(folded);
            else ClassEntries = PrefixEntries(folded);
            _values[Absent] = VectorComparer.ValueOf(any);
        }

        /// <summary>
        /// An array field of <paramref name="owner"/>, whose rules are the first of <paramref name="longer"/>'s classifier's
        /// (<see cref="Extends"/>): a value's vector is the one it has there less the rules past them, so each class of
        /// <paramref name="longer"/> is cut to those rules, classes left equal are merged, and they are numbered in order of
        /// their first value (the absent class first), as the sweep numbers them. A class the cut leaves as it was keeps its
        /// vector (not copied: map values are never written to); a value's class is one array read.
        /// </summary>
        public Dimension(ClassifierLayout owner, Dimension longer)
        {
            _owner = owner;
            (Field, Index, IsArray) = (longer.Field, longer.Index, true);
            var n = owner.Classifier.Rules.Count;
            var any = longer.RuleWords(longer.Absent);
            Cut(any, n);
            var folded = (ulong[])any.Clone();
            Cut(folded, Math.Min(n, 64 * owner.FoldedWords));
            Absent = ClassOf(folded); // the values whose class was the absent one had the folded vector
            var ids = new int[longer.ClassCount];
            Array.Fill(ids, -1);
            ids[longer.Absent] = Absent;
            var words = new ulong[owner.Words];
            var classes = new int[longer.ArrayClasses.Length];
            for (var x = 0; x < classes.Length; x++)
            {
                var c = longer.ArrayClasses[x];
                if (ids[c] < 0)
                {
                    var value = longer._values[c];
                    MemoryMarshal.Cast<byte, ulong>(value.AsSpan(8 * SummaryWords)).CopyTo(words);
                    ids[c] = Cut(words, n) ? ClassOf(words) : ClassOf(words, value);
                }
                classes[x] = ids[c];
            }
            ArrayClasses = classes;
            _values[Absent] = VectorComparer.ValueOf(any);
        }

        /// <summary>Clears the bits of the rules from <paramref name="rules"/> on; whether one was set.</summary>
        private static bool Cut(ulong[] v, int rules)
        {
            var cut = false;
            for (var w = rules / 64; w < v.Length; w++)
            {
                var keep = w == rules / 64 ? (1UL << (rules % 64)) - 1 : 0;
                cut |= (v[w] & ~keep) != 0;
                v[w] &= keep;
            }
            return cut;
        }

        public Field Field { get; }
        public int Index { get; }
        public bool IsArray { get; }
        /// <summary>
        /// The class of a packet that lacks the field, and of values no rule with a matcher on it admits. Its vector is the
        /// field's match-anything vector: the rules without a matcher on the field, which no other class's vector holds
        /// past <see cref="FoldedWords"/> (the program ORs this one into the vector it looks up there), so a rule appended
        /// without a matcher on the field is one bit of one vector, not one of every class's (issue 12: appending such a
        /// rule rewrote 17,531 vectors).
        /// </summary>
        public int Absent { get; }
        /// <summary>Classes (numbered in order of first use).</summary>
        public int ClassCount => _values.Count;
        /// <summary>Array fields: the local class of every value (index: the value); empty for trie fields.</summary>
        public int[] ArrayClasses { get; } = [];
        /// <summary>Trie fields: {prefix length, value} (key without the classifier's slot) to local class; empty for array fields.</summary>
        public IReadOnlyList<(byte[] Key, int Class)> ClassEntries { get; } = [];

        /// <summary>Class <paramref name="c"/>'s rule words (after the summary words): its rules with a matcher on the field admitting it and those without one before <see cref="FoldedWords"/>, for <see cref="Absent"/> every rule without one.</summary>
        public ulong[] RuleWords(int c) => MemoryMarshal.Cast<byte, ulong>(_values[c].AsSpan(8 * SummaryWords)).ToArray();

        /// <summary>
        /// Class <paramref name="c"/>'s vector as a map value: the summary words, then <paramref name="words"/> words of rules
        /// (at least the classifier's). The classifier's own width is the value kept (not copied: map values are never written to).
        /// </summary>
        public byte[] VectorValue(int c, int words)
        {
            var v = _values[c];
            if (words == _owner.Words) return v;
            var value = new byte[8 * (SummaryWords + words)];
            v.CopyTo(value, 0); // the extra words are zero: the summary is the same
            return value;
        }

        /// <param name="value">The map value of <paramref name="vector"/> when there is one already (null: made here).</param>
        private int ClassOf(ulong[] vector, byte[]? value = null)
        {
            var lookup = _ids.GetAlternateLookup<ReadOnlySpan<ulong>>();
            if (lookup.TryGetValue(vector, out var id)) return id;
            value ??= VectorComparer.ValueOf(vector);
            _ids[value] = _values.Count;
            _values.Add(value);
            return _values.Count - 1;
        }

        private static void Set(ulong[] v, int rule) => v[rule / 64] |= 1UL << (rule % 64);
        private static void Clear(ulong[] v, int rule) => v[rule / 64] &= ~(1UL << (rule % 64));

        /// <summary>
        /// Fields up to 16 bits: sweep the boundaries of every interval (rules entering and leaving the
        /// running vector), one class per elementary interval; the array holds the class of every value.
        /// The events are one flat array sorted once by point, leaving before entering, then in the order the
        /// rules gave them (issue 12: a sorted dictionary of per-point lists, each ordered again, was most of a
        /// ClassBench-style load's layout time).
        /// </summary>
        private int[] ArrayEntries(ulong[] any)
        {
            var rules = _owner.Classifier.Rules;
            var size = 1UL << Field.Bits;
            var events = new List<SweepEvent>();
            for (var r = 0; r < rules.Count; r++)
                if (rules[r].Admits[Index] is { } admits)
                    foreach (var iv in admits)
                    {
                        events.Add(new SweepEvent(iv.From, true, events.Count, r));
                        if (iv.To + 1 < size) events.Add(new SweepEvent(iv.To + 1, false, events.Count, r));
                    }
            var sorted = events.ToArray();
            Array.Sort(sorted);
            var running = (ulong[])any.Clone();
            var classes = new int[size];
            var e = 0;
            ulong point = 0; // the first elementary interval starts at 0, with or without an event there
            while (true)
            {
                for (; e < sorted.Length && sorted[e].Point == point; e++)
                    if (sorted[e].Enter) Set(running, sorted[e].Rule); else Clear(running, sorted[e].Rule);
                var cls = ClassOf(running);
                var end = e < sorted.Length ? sorted[e].Point : size;
                for (var x = point; x < end; x++) classes[x] = cls;
                if (e == sorted.Length) break;
                point = end;
            }
            return classes;
        }

        /// <summary>A rule entering or leaving the running vector at a point; ordered by point, leaving first, then as added.</summary>
        private readonly record struct SweepEvent(ulong Point, bool Enter, int Order, int Rule) : IComparable<SweepEvent>
        {
            public int CompareTo(SweepEvent other) =>
                Point != other.Point ? Point.CompareTo(other.Point) : Enter != other.Enter ? Enter.CompareTo(other.Enter) : Order.CompareTo(other.Order);
        }

        /// <summary>
        /// Wider fields: an LPM trie of every prefix the rules' intervals split into, plus /0. A value's
        /// longest matching prefix P decides: a rule admits the value exactly when one of its prefixes
        /// contains P (prefixes containing one value are nested), so P's class is the rules owning P or a
        /// shorter prefix of it, and the rules without a matcher on the field.
        /// </summary>
        private List<(byte[], int)> PrefixEntries(ulong[] any)
        {
            var rules = _owner.Classifier.Rules;
            var bits = Field.Bits;
            var owners = new Dictionary<(ulong Value, int Length), List<int>> { [(0, 0)] = new() };
            for (var r = 0; r < rules.Count; r++)
                if (rules[r].Admits[Index] is { } admits)
                    foreach (var iv in admits)
                        foreach (var (data, length) in SetLayout.SplitRange(iv.From, iv.To, bits))
                        {
                            var key = (BinaryPrimitives.ReadUInt32BigEndian(Pad(data)), length);
                            if (!owners.TryGetValue(key, out var list)) owners[key] = list = new();
                            list.Add(r);
                        }
            var entries = new List<(byte[], int)>();
            var vector = new ulong[_owner.Words];
            foreach (var (value, length) in owners.Keys)
            {
                Array.Copy(any, vector, vector.Length);
                for (var l = 0; l <= length; l++)
                {
                    var mask = l == 0 ? 0UL : ~0UL << (bits - l) & ((1UL << bits) - 1);
                    if (owners.TryGetValue((value & mask, l), out var list))
                        foreach (var r in list) Set(vector, r);
                }
                var key = new byte[4 + Field.Bytes];
                BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)length);
                var be = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(be, (uint)value);
                be.AsSpan(4 - Field.Bytes).CopyTo(key.AsSpan(4));
                entries.Add((key, ClassOf(vector)));
            }
            return entries;
        }

        private static byte[] Pad(byte[] data)
        {
            var four = new byte[4];
            data.CopyTo(four, 4 - data.Length);
            return four;
        }
    }

    /// <summary>Vectors as map values compared by their rule words, and found by those words as a span (the sweep's running vector).</summary>
    private sealed class VectorComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<ulong>, byte[]>
    {
        public static readonly VectorComparer Instance = new();

        static ReadOnlySpan<ulong> Words(byte[] value) => MemoryMarshal.Cast<byte, ulong>(value.AsSpan(8 * SummaryWords));

        public bool Equals(byte[]? a, byte[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(byte[] v) => GetHashCode(Words(v));
        public bool Equals(ReadOnlySpan<ulong> words, byte[] other) => words.SequenceEqual(Words(other));

        public int GetHashCode(ReadOnlySpan<ulong> words)
        {
            var h = new HashCode();
            h.AddBytes(MemoryMarshal.AsBytes(words));
            return h.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<ulong> words) => ValueOf(words);

        /// <summary>The map value of rule words: the summary words (bit w % 64 of word w / 64 set when word w has a rule), then the words.</summary>
        public static byte[] ValueOf(ReadOnlySpan<ulong> words)
        {
            var value = new byte[8 * (SummaryWords + words.Length)];
            var all = MemoryMarshal.Cast<byte, ulong>(value.AsSpan());
            for (var w = 0; w < words.Length; w++)
            {
                if (words[w] != 0) all[w / 64] |= 1UL << (w % 64);
                all[SummaryWords + w] = words[w];
            }
            return value; // host order, as the program loads the words (little-endian here, as every key and value)
        }
    }
}
