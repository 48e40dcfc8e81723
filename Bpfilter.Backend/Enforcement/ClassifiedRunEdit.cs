using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Numerics;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// One rule appended to a base chain whose last rule (after lowering) is a classifier (<see cref="Classification"/>), as
/// classifier table updates worked out from the change alone: the chain is neither lowered nor compiled. The rule takes
/// the next bit of the classifier: per field, the classes holding values it admits split in two (the part whose first
/// value comes first keeps the class id, as <see cref="ClassifierTables"/> hands ids out with the running class maps
/// as hint; the other part takes the lowest free id), every vector it joins gains its bit (on a field it has no
/// matcher on, the field's match-anything vector alone: one vector, the rule being past the folded words of
/// <see cref="ClassifierLayout.Folded"/>), and the rule map gets its
/// verdict code and counter slot. What results is what a full compile with the running counter layout and class ids
/// gives (same code, maps, counter slots and recorded compilation), taken only when that is certain without compiling:
/// every other chain and set unchanged, the rule classifiable on the classifier's fields (a split address field only
/// as a product of halves), with a verdict the classifier has, within its capacity of words, not reordering its fields
/// by selectivity, not forming a grouped run (<see cref="RuleGrouping"/>) with the rules before it, the classifier a
/// whole run (not after another classifier) and the last of the program's classifiers reading each of its fields, and
/// the program's tables as it was compiled. Anything else is null: the caller compiles, and <see cref="MapDiff.Between"/> decides.
/// </summary>
internal static class ClassifiedRunEdit
{
    /// <summary>The edit from the source <paramref name="was"/> that <paramref name="loaded"/> runs to <paramref name="now"/>, or null.</summary>
    public static (CompiledProgram Compiled, MapDiff Diff)? Between(LoadedProgram loaded, UnitSource was, UnitSource now)
    {
        var compiled = loaded.Compiled;
        if (!loaded.TablesAsCompiled || compiled.Classifiers.Count == 0) return null;
        if (now.OneChainsRulesChangedFrom(was) is not var (before, after) || after.Rules.Count != before.Rules.Count + 1) return null;
        for (var q = 0; q < before.Rules.Count; q++)
            if (!UnitSource.Same(before.Rules[q], after.Rules[q])) return null;
        var rule = after.Rules[^1];

        ClassifierRecord? record = null;
        var index = -1;
        for (var k = 0; k < compiled.Classifiers.Count; k++)
        {
            var c = compiled.Classifiers[k];
            if (c.Chain != before.Name || !c.EndsChain) continue;
            if (record != null) return null;
            (record, index) = (c, k);
        }
        if (record == null || record.AfterClassifier) return null;
        var cv = record.Classifier;
        var n = cv.Rules.Count;
        // the classifier is the chain's last rules: the run the appended rule joins (a run past MaxRules is cut in pieces)
        if (n >= before.Rules.Count + 1 || n + 1 > Classification.DefaultMaxRules || n + 1 > ClassifierLayout.MaxRules
            || ClassifierLayout.CapacityWords(n + 1) != record.Words) return null;
        if (!record.VerdictCodes.Contains(rule.Verdict) || Classification.AdmitsOf(rule) is not { } admits) return null;
        if (Grouped(after.Rules, rule)) return null;
        if (Admits(cv, admits) is not { } perField) return null;
        if (Order(cv.Rules, null) is var order && !order.SequenceEqual(Order(cv.Rules, perField))) return null;
        var added = new ClassifierRule(perField.Select(a => a?.ToValueList()).ToValueList(), rule.Statements, rule.Verdict) { Origin = rule.Origin };

        // the counter slot, as the compiler hands out a new id's slot (CounterLayout): past every slot the program held
        var slots = new Dictionary<ulong, int>(compiled.CounterSlots);
        var used = compiled.CounterSlotsUsed;
        var counter = 0u;
        var counters = rule.CounterIds.ToList();
        if (counters.Count > 1) return null;
        if (counters.Count == 1)
        {
            var next = Math.Max(used, slots.Count == 0 ? 0 : slots.Values.Max() + 1);
            if (slots.ContainsKey(counters[0]) || next >= loaded.CounterCapacity) return null;
            slots[counters[0]] = next;
            used = Math.Max(used, next + 1);
            counter = (uint)next + 1;
        }

        var maps = compiled.Maps.ToList();
        var changes = new List<MapDiff.MapChange>();
        foreach (var (dim, at) in cv.Fields.Select((f, d) => (d, record.At.Dimensions[d])))
        {
            // the last classifier reading the field: an id it takes is no later classifier's
            if (compiled.Classifiers.Any(c => c != record && c.At.Dimensions.Any(x => x.Map == at.Map && x.Slot > at.Slot))) return null;
            if (Field(loaded, maps, cv.Fields[dim], at, n, ClassifierLayout.Folded(record.Words), perField[dim], changes) is false) return null;
        }

        // the rule's entry: its verdict code and counter slot + 1
        var ruleMap = maps.FindIndex(m => m.Name == ClassifierTables.RuleMap);
        if (ruleMap < 0) return null;
        var value = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(value, (uint)record.VerdictCodes.ToList().IndexOf(rule.Verdict) + 1);
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), counter);
        var key = record.At.RuleBase + n;
        var ruleSpec = maps[ruleMap];
        var ruleEntries = ruleSpec.Entries.ToList();
        var after1 = ruleEntries.FindIndex(e => BinaryPrimitives.ReadInt32LittleEndian(e.Key) == key - 1);
        if (key >= ruleSpec.MaxEntries || after1 < 0 || (loaded.Entries(ruleSpec.Name)?.ContainsKey(ClassifierLayout.Key(key)) ?? true)) return null;
        ruleEntries.Insert(after1 + 1, (ClassifierLayout.Key(key), value));
        maps[ruleMap] = ruleSpec with { Entries = ruleEntries };
        changes.Add(new MapDiff.MapChange(ruleSpec.Name, [], [(ClassifierLayout.Key(key), value)]));

        var classifiers = compiled.Classifiers.ToList();
        var grown = cv with { Rules = cv.Rules.Append(added).ToValueList() };
        classifiers[index] = record with { Classifier = grown };
        if (Commented(compiled, cv.ToString(), grown.ToString()) is not { } code) return null;
        return (code with { Maps = maps, CounterSlots = slots, CounterSlotsUsed = used, Classifiers = classifiers }, new MapDiff(loaded, changes));
    }

    /// <summary>
    /// The compilation with the classifier's comment (the lowered rule as text: its fields and rule count) made what a
    /// compile of the grown classifier writes; null unless exactly one instruction carries it.
    /// </summary>
    static CompiledProgram? Commented(CompiledProgram compiled, string was, string now)
    {
        var found = 0;
        ImmutableArray<Instruction> Replace(ImmutableArray<Instruction> code)
        {
            var b = code.ToBuilder();
            for (var i = 0; i < b.Count; i++)
                if (b[i].Comment == was)
                {
                    b[i] = b[i].WithComment(now);
                    found++;
                }
            return b.ToImmutable();
        }
        var result = compiled with { Instructions = Replace(compiled.Instructions), Segments = [.. compiled.Segments.Select(Replace)] };
        return found == 1 ? result : null;
    }

    /// <summary>Whether the rule would end a run of <see cref="RuleGrouping.DefaultMinRun"/> rules of one lookup key (or one with a jump): grouped, not classified.</summary>
    static bool Grouped(ValueList<Rule> rules, Rule rule)
    {
        if (RuleGrouping.KeyOf(rule) is not { } key) return false;
        var run = 1;
        for (var x = rules.Count - 2; x >= 0 && RuleGrouping.KeyOf(rules[x]) == key; x--)
            if (rules[x].Verdict is JumpVerdict || ++run >= RuleGrouping.DefaultMinRun) return true;
        return run >= RuleGrouping.DefaultMinRun;
    }

    /// <summary>
    /// The rule's admitted values per field of the classifier (a split field as its halves, as <see cref="ClassifierFieldSplit"/>
    /// does), or null when it reads a field the run does not (the classifier's fields change) or breaks a split.
    /// </summary>
    static List<List<Interval>?>? Admits(ClassifierVerdict cv, Dictionary<Field, List<Interval>> admits)
    {
        if (cv.Dimensions.Count == 0 || admits.Keys.Any(f => !cv.Dimensions.Contains(f))) return null;
        var result = new List<List<Interval>?>();
        var k = 0;
        foreach (var d in cv.Dimensions)
        {
            if (k >= cv.Fields.Count) return null;
            admits.TryGetValue(d, out var a);
            if (cv.Fields[k] == d)
            {
                result.Add(a);
                k++;
                continue;
            }
            if (ClassifierFieldSplit.HalvesOf(d) is not { } h || k + 1 >= cv.Fields.Count || cv.Fields[k] != h.Hi || cv.Fields[k + 1] != h.Lo) return null;
            if (a == null)
            {
                result.Add(null);
                result.Add(null);
            }
            else
            {
                if (!ClassifierFieldSplit.IsProduct(a)) return null;
                var (hi, lo) = a.Count == 0 ? ([], []) : ClassifierFieldSplit.Halves(a[0]);
                result.Add(hi);
                result.Add(lo);
            }
            k += 2;
        }
        return k == cv.Fields.Count ? result : null;
    }

    /// <summary>The order the code reads the fields in (ProgramCompiler's EmitClassifier: by eighths of rules without a matcher), with <paramref name="more"/> appended.</summary>
    static List<int> Order(ValueList<ClassifierRule> rules, List<List<Interval>?>? more)
    {
        var fields = rules[0].Admits.Count;
        var count = rules.Count + (more == null ? 0 : 1);
        var nulls = new int[fields];
        foreach (var r in rules)
            for (var d = 0; d < fields; d++)
                if (r.Admits[d] is null) nulls[d]++;
        if (more != null)
            for (var d = 0; d < fields; d++)
                if (more[d] is null) nulls[d]++;
        return Enumerable.Range(0, fields).OrderBy(d => 8 * nulls[d] / count).ToList();
    }

    /// <summary>An entry of a field's class map in compile order: its key, the class id it had, whether its values gain the rule.</summary>
    readonly record struct Entry(byte[] Key, int Was, bool Gains);

    /// <summary>
    /// One field's updates for rule <paramref name="bit"/> admitting <paramref name="admits"/> (null: any value, and a
    /// packet lacking the field): the class and vector maps' changes added to <paramref name="changes"/>, their specs
    /// in <paramref name="maps"/> replaced by what a full compile gives. False when that is not certain.
    /// </summary>
    static bool Field(LoadedProgram loaded, List<MapSpec> maps, Field field, (int Map, int Slot, int Absent) at, int bit, int folded,
        List<Interval>? admits, List<MapDiff.MapChange> changes)
    {
        var (classMap, vectorMap) = (ClassifierTables.ClassMap(at.Map), ClassifierTables.VectorMap(at.Map));
        var (ci, vi) = (maps.FindIndex(m => m.Name == classMap), maps.FindIndex(m => m.Name == vectorMap));
        if (ci < 0 || vi < 0 || at.Absent != at.Slot) return false;
        var (classSpec, vectorSpec) = (maps[ci], maps[vi]);
        if (loaded.Entries(classMap) is not { } classLive || loaded.Entries(vectorMap) is not { } vectorLive
            || loaded.CurrentCopy(classMap) is not { } classCopy || loaded.CurrentCopy(vectorMap) is not { } vectorCopy) return false;
        var isArray = field.Bits <= ClassifierLayout.MaxArrayBits;
        var slot = at.Slot;

        // the slot's entries come last in the class map (the last classifier reading the field): the rest stays
        var first = classSpec.Entries.Count;
        while (first > 0 && SlotOf(classSpec.Entries[first - 1].Key, field, isArray) == slot) first--;
        for (var e = 0; e < first; e++)
            if (SlotOf(classSpec.Entries[e].Key, field, isArray) >= slot) return false;
        if (ClassVectors.Of(vectorSpec.Entries) is not { } vectors) return false;
        int IdOf(byte[] stored) => BinaryPrimitives.ReadInt32LittleEndian(stored) ^ slot;

        List<Entry> entries;
        if (admits == null)
        {
            // no matcher on the field: the field's match-anything vector (the absent class's, which the program ORs into
            // every class's past the folded words, where the rule is) gains the rule; no class splits and no other vector changes
            if (bit < 64 * folded || !vectors.TryGet(slot, out var any) || Has(any, bit)) return false;
            var gained = With(any, bit);
            vectors.Set(slot, gained);
            maps[vi] = vectorSpec with { Entries = vectors.Entries() };
            changes.Add(new MapDiff.MapChange(vectorMap, [], [(ClassifierLayout.Key(slot), gained)]));
            return true;
        }

        if (isArray) return ArrayField(maps, (ci, vi), field, slot, first, bit, folded, admits, vectors, (classCopy, vectorCopy), changes);

        {
            // a trie field: the rule's prefixes (ClassifierLayout's PrefixEntries), in the order it lists them
            var mine = classSpec.Entries.Skip(first).ToList();
            var bits = field.Bits;
            var prefixes = new List<(uint Value, int Length)>();
            foreach (var iv in admits)
                foreach (var (data, length) in SetLayout.SplitRange(new BigInteger(iv.From), new BigInteger(iv.To), bits))
                {
                    var four = new byte[4];
                    data.CopyTo(four, 4 - data.Length);
                    var p = (BinaryPrimitives.ReadUInt32BigEndian(four), length);
                    if (!prefixes.Contains(p)) prefixes.Add(p);
                }
            (uint Value, int Length) PrefixOf(byte[] key)
            {
                var four = new byte[4];
                key.AsSpan(8).CopyTo(four.AsSpan(4 - field.Bytes));
                return (BinaryPrimitives.ReadUInt32BigEndian(four), (int)BinaryPrimitives.ReadUInt32LittleEndian(key) - 32);
            }
            uint Mask(int length) => length == 0 ? 0u : (uint)(~0UL << (bits - length) & ((1UL << bits) - 1));
            bool Contains((uint Value, int Length) outer, (uint Value, int Length) inner) =>
                outer.Length <= inner.Length && (inner.Value & Mask(outer.Length)) == outer.Value;
            entries = new List<Entry>(mine.Count + prefixes.Count);
            var known = new Dictionary<(uint, int), int>();
            foreach (var (k, v) in mine)
            {
                var p = PrefixOf(k);
                known[p] = IdOf(v);
                entries.Add(new Entry(k, IdOf(v), prefixes.Any(q => Contains(q, p))));
            }
            if (!known.ContainsKey((0u, 0))) return false;
            foreach (var q in prefixes)
            {
                if (known.ContainsKey(q)) continue;
                // its values took the longest prefix holding it: that class, with the rule
                var (best, id) = (-1, slot);
                foreach (var (p, c) in known)
                    if (p.Item2 > best && Contains((p.Item1, p.Item2), q)) (best, id) = (p.Item2, c);
                var key = new byte[8 + field.Bytes];
                BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)q.Length + 32);
                BinaryPrimitives.WriteUInt32BigEndian(key.AsSpan(4), (uint)slot);
                var be = new byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(be, q.Value);
                be.AsSpan(4 - field.Bytes).CopyTo(key.AsSpan(8));
                entries.Add(new Entry(key, id, true));
            }
        }

        // ids as ClassifierTables gives them with the running class maps as hint: the absent class is the slot; a class
        // takes the id of the first of its entries whose id no class took; the rest the lowest free ids, in order of first entry
        var assigned = new Dictionary<(int, bool), int> { [(slot, false)] = slot };
        var taken = new HashSet<int> { slot };
        var classes = new List<(int, bool)> { (slot, false) };
        var listed = new HashSet<(int, bool)>(classes);
        var old = new HashSet<int>();
        foreach (var e in entries)
        {
            if (e.Was != slot) old.Add(e.Was);
            var c = (e.Was, e.Gains);
            if (assigned.ContainsKey(c)) continue;
            if (listed.Add(c)) classes.Add(c);
            if (e.Was >= ClassifierTables.ReservedClasses && classLive.ContainsKey(e.Key) && taken.Add(e.Was)) assigned[c] = e.Was;
        }
        if (!old.IsSubsetOf(taken)) return false; // a class left without values: not an append's edit
        foreach (var id in old)
            if (!vectors.TryGet(id, out var v) || Has(v, bit)) return false;
        if (!vectors.TryGet(slot, out var absentVector) || Has(absentVector, bit)) return false;
        // the lowest ids neither a vector of the map nor taken
        var free = new HashSet<int>(taken);
        var nextId = ClassifierTables.ReservedClasses;
        foreach (var c in classes)
        {
            if (assigned.ContainsKey(c)) continue;
            while (free.Contains(nextId) || vectors.Contains(nextId)) nextId++;
            assigned[c] = nextId;
            free.Add(nextId);
        }

        if (SplitVectors(assigned, vectors, slot, bit, folded, vectorCopy) is not { } vectorUpserts) return false;

        var classUpserts = new List<(byte[], byte[])>();
        var classEntries = new List<(byte[] Key, byte[] Value)>(first + entries.Count);
        for (var e = 0; e < first; e++) classEntries.Add(classSpec.Entries[e]);
        // one stored value per class, as the compiler shares them (a class array has 65,536 entries and a few classes)
        var storedOf = new Dictionary<int, byte[]>();
        foreach (var e in entries)
        {
            var id = assigned[(e.Was, e.Gains)];
            if (!storedOf.TryGetValue(id, out var stored)) storedOf[id] = stored = ClassifierLayout.Key(id ^ slot);
            classEntries.Add((e.Key, stored));
            if (id != e.Was || !classLive.ContainsKey(e.Key)) classUpserts.Add((e.Key, stored));
        }
        if (classEntries.Count > classCopy.MaxEntries) return false;
        maps[ci] = classSpec with { Entries = classEntries, MaxEntries = CounterLayout.Capacity(classEntries.Count) };
        Record(maps, (ci, vi), vectors, classUpserts, vectorUpserts, changes);
        return true;
    }

    /// <summary>
    /// An array field's updates for rule <paramref name="bit"/> admitting <paramref name="admits"/>: only the classes
    /// holding a value it admits split, so only their values are looked at past one pass over the slot's entries (issue 12:
    /// the whole class array was rebuilt as 65,536 entries, each hashed twice, per constrained 16-bit field and append).
    /// Ids as <see cref="Field"/> hands them out: a class keeps its id for the part holding its first value (its entries
    /// are all written: its first is live), the other part and the absent class's values the rule admits take the lowest
    /// free ids in order of their first value. The recorded entries are the compiled ones with the moved values' entries
    /// replaced and the absent class's admitted values' entries merged in by value, copied in ranges (issue 12: rebuilding
    /// the list entry by entry, with a hash lookup per value, was most of an append's edit).
    /// </summary>
    static bool ArrayField(List<MapSpec> maps, (int Class, int Vector) at, Field field, int slot, int first, int bit, int folded,
        List<Interval> admits, ClassVectors vectors, (BpfMap Class, BpfMap Vector) copies, List<MapDiff.MapChange> changes)
    {
        var classSpec = maps[at.Class];
        var compiled = classSpec.Entries as (byte[] Key, byte[] Value)[] ?? [.. classSpec.Entries];
        var size = 1 << field.Bits;
        var baseKey = slot << field.Bits;
        int ValueAt(int e) => BinaryPrimitives.ReadInt32LittleEndian(compiled[e].Key) - baseKey;
        var was = new int[size];
        Array.Fill(was, slot); // an entry not written is 0: the absent class
        var entryOf = new int[size];
        Array.Fill(entryOf, -1);
        var maxClass = slot;
        for (var e = first; e < compiled.Length; e++)
        {
            var x = ValueAt(e);
            if (x < 0 || x >= size || entryOf[x] >= 0 || (e > first && x <= ValueAt(e - 1))) return false;
            was[x] = BinaryPrimitives.ReadInt32LittleEndian(compiled[e].Value) ^ slot;
            if (was[x] < ClassifierTables.ReservedClasses) return false; // only the absent class (not written) is below
            entryOf[x] = e;
            maxClass = Math.Max(maxClass, was[x]);
        }
        var gains = new bool[size];
        foreach (var iv in admits)
            for (var x = iv.From; x <= iv.To && x < (ulong)size; x++) gains[x] = true;
        // per class id: whether the rule splits it, and the ids of its parts (without, with the rule) once handed out
        var affected = new bool[maxClass + 1];
        var affectedCount = 0;
        for (var x = 0; x < size; x++)
            if (gains[x] && !affected[was[x]])
            {
                affected[was[x]] = true;
                affectedCount++;
                if (!vectors.TryGet(was[x], out var v) || Has(v, bit)) return false;
            }
        var partId = new int[2 * (maxClass + 1)];
        Array.Fill(partId, -1);
        static int Part(int c, bool g) => 2 * c + (g ? 1 : 0);

        // per affected class, its parts in order of first value: the first keeps the class's id (the absent class's is
        // the slot, its admitted part new), the rest take free ids in that order
        var assigned = new Dictionary<(int, bool), int> { [(slot, false)] = slot };
        partId[Part(slot, false)] = slot;
        var fresh = new List<(int, bool)>();
        var seen = new bool[2 * (maxClass + 1)];
        seen[Part(slot, false)] = true;
        var parts = 1;
        for (var x = 0; x < size && parts < 2 * affectedCount + 1; x++)
        {
            var c = was[x];
            if (!affected[c] || seen[Part(c, gains[x])]) continue;
            seen[Part(c, gains[x])] = true;
            parts++;
            if (c != slot && !seen[Part(c, !gains[x])]) assigned[(c, gains[x])] = c;
            else fresh.Add((c, gains[x]));
        }
        var ids = new HashSet<int>();
        var nextId = ClassifierTables.ReservedClasses;
        foreach (var part in fresh)
        {
            while (ids.Contains(nextId) || vectors.Contains(nextId)) nextId++;
            assigned[part] = nextId;
            ids.Add(nextId);
        }
        foreach (var ((c, g), id) in assigned) partId[Part(c, g)] = id;
        if (SplitVectors(assigned, vectors, slot, bit, folded, copies.Vector) is not { } vectorUpserts) return false;

        // the values whose class id changes, in value order, with their entries: the compiled ones rewritten, the absent
        // class's admitted values new (an array is filled with zeros: no entry for them as compiled)
        var classUpserts = new List<(byte[], byte[])>();
        var storedOf = new Dictionary<int, byte[]>(); // one stored value per class, as the compiler shares them
        var added = 0;
        for (var x = 0; x < size; x++)
        {
            var c = was[x];
            if (!affected[c]) continue;
            var id = partId[Part(c, gains[x])];
            if (id == c) continue;
            if (!storedOf.TryGetValue(id, out var stored)) storedOf[id] = stored = ClassifierLayout.Key(id ^ slot);
            classUpserts.Add((entryOf[x] >= 0 ? compiled[entryOf[x]].Key : ClassifierLayout.Key(baseKey + x), stored));
            if (entryOf[x] < 0) added++;
        }
        var classEntries = new (byte[] Key, byte[] Value)[compiled.Length + added];
        var (from, to) = (0, 0);
        void CopyUpTo(int end)
        {
            compiled.AsSpan(from, end - from).CopyTo(classEntries.AsSpan(to));
            to += end - from;
            from = end;
        }
        CopyUpTo(first);
        foreach (var (key, stored) in classUpserts)
        {
            var x = BinaryPrimitives.ReadInt32LittleEndian(key) - baseKey;
            if (entryOf[x] >= 0)
            {
                CopyUpTo(entryOf[x]);
                from++;
            }
            else
            {
                // before the first compiled entry of a higher value
                var end = from;
                while (end < compiled.Length && ValueAt(end) < x) end++;
                CopyUpTo(end);
            }
            classEntries[to++] = (key, stored);
        }
        CopyUpTo(compiled.Length);
        if (classEntries.Length > copies.Class.MaxEntries) return false;
        maps[at.Class] = classSpec with { Entries = classEntries };
        Record(maps, at, vectors, classUpserts, vectorUpserts, changes);
        return true;
    }

    /// <summary>
    /// The vectors of split classes (<paramref name="assigned"/>: class id before and whether the part gains the rule, to
    /// its id now) set in <paramref name="vectors"/>; the upserts, or null when the vector map has no room for the ids. A
    /// class keeping its id rewrites it: the other part reads the old vector (the map's as compiled: nothing set yet); the
    /// absent class's values the rule admits become a class of the rule and the absent vector's <paramref name="folded"/>
    /// words (the rules without a matcher that every class holds; past them the program ORs the absent vector in).
    /// </summary>
    static List<(byte[], byte[])>? SplitVectors(Dictionary<(int, bool), int> assigned, ClassVectors vectors, int slot, int bit, int folded, BpfMap vectorCopy)
    {
        var upserts = new List<(byte[], byte[])>();
        foreach (var ((was, gains), id) in assigned)
        {
            if (!vectors.TryGetOriginal(was, out var old)) return null;
            var v = gains ? With(was == slot ? FoldedPart(old, folded) : old, bit) : old;
            if (vectors.TryGet(id, out var had) && had.AsSpan().SequenceEqual(v)) continue;
            vectors.Set(id, v);
            upserts.Add((ClassifierLayout.Key(id), v));
        }
        return vectors.MaxId < vectorCopy.MaxEntries ? upserts : null;
    }

    /// <summary>The field's vector map recorded as edited, and the class and vector maps' upserts.</summary>
    static void Record(List<MapSpec> maps, (int Class, int Vector) at, ClassVectors vectors, List<(byte[], byte[])> classUpserts,
        List<(byte[], byte[])> vectorUpserts, List<MapDiff.MapChange> changes)
    {
        maps[at.Vector] = maps[at.Vector] with { Entries = vectors.Entries(), MaxEntries = ClassifierTables.VectorCapacity(vectors.MaxId + 1) };
        if (classUpserts.Count > 0) changes.Add(new MapDiff.MapChange(maps[at.Class].Name, [], classUpserts));
        if (vectorUpserts.Count > 0) changes.Add(new MapDiff.MapChange(maps[at.Vector].Name, [], vectorUpserts));
    }

    /// <summary>The classifier slot of a class map key (array: slot × 2^bits + value; trie: {32 + length, slot big-endian, value}).</summary>
    static int SlotOf(byte[] key, Field field, bool isArray) =>
        isArray ? BinaryPrimitives.ReadInt32LittleEndian(key) >> field.Bits : (int)BinaryPrimitives.ReadUInt32BigEndian(key.AsSpan(4));

    static int RuleWord(int bit) => 8 * (ClassifierLayout.SummaryWords + bit / 64);

    static bool Has(byte[] vector, int bit) => (BinaryPrimitives.ReadUInt64LittleEndian(vector.AsSpan(RuleWord(bit))) & (1UL << (bit % 64))) != 0;

    /// <summary>The vector's first <paramref name="folded"/> rule words, the rest zero, its summary theirs (as ClassifierLayout writes a class's vector).</summary>
    static byte[] FoldedPart(byte[] vector, int folded)
    {
        var v = new byte[vector.Length];
        for (var w = 0; w < folded && RuleWord(64 * w) < v.Length; w++)
        {
            var word = BinaryPrimitives.ReadUInt64LittleEndian(vector.AsSpan(RuleWord(64 * w)));
            if (word == 0) continue;
            BinaryPrimitives.WriteUInt64LittleEndian(v.AsSpan(RuleWord(64 * w)), word);
            var s = 8 * (w / 64);
            BinaryPrimitives.WriteUInt64LittleEndian(v.AsSpan(s), BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(s)) | 1UL << (w % 64));
        }
        return v;
    }

    /// <summary>The vector with rule <paramref name="bit"/> set, and its word's summary bit.</summary>
    static byte[] With(byte[] vector, int bit)
    {
        var v = (byte[])vector.Clone();
        var at = RuleWord(bit);
        BinaryPrimitives.WriteUInt64LittleEndian(v.AsSpan(at), BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(at)) | 1UL << (bit % 64));
        var word = bit / 64;
        var s = 8 * (word / 64);
        BinaryPrimitives.WriteUInt64LittleEndian(v.AsSpan(s), BinaryPrimitives.ReadUInt64LittleEndian(v.AsSpan(s)) | 1UL << (word % 64));
        return v;
    }
}
