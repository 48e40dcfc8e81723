using System.Text;
using Nft.Bytecode;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Daemon.Placement;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The counter bookkeeping that lives only in the daemon and must survive a restart, keyed by what nft names
/// (family, table, chain, rule handle), not by the lifter's slot ids (a restarted daemon hands those out
/// anew): per BPF rule counter, the totals carried from replaced programs and the reset baseline; per
/// kernel-placed rule or object counter, the reset baseline. Version 2 also keeps every BPF entry's object
/// name (named counters run in BPF) and slot id (a restarted daemon that hands out the same ids compiles the
/// same programs and adopts the pinned ones, their counts included); version 1, with neither, is still read.
/// Version 3 adds the slot ids of quotas (with what each one's `used` started from) and of limits, so that the
/// restarted daemon hands them the same slots of the shared maps it reopens: consumption and buckets continue.
/// Version 4 adds, per attach point, the counter slot layout of its program (a program kept while rules were
/// added holds counters in slots a fresh compilation would not choose: the restarted daemon compiles with it).
/// Version 5 adds, per set the packet path writes whose elements carry several statement lists, those lists (an element's tag
/// in the pinned maps is its list's index: the restarted daemon compiles with them to adopt the programs and their elements).
/// Version 6 adds the start point of each quota the kernel took over from BPF (<see cref="KernelQuotaStarts"/>: after a reset in
/// BPF it is not the created `used`, and the restarted daemon adopts the kernel's tables with it).
/// Version 7 adds, per kernel rule counter both sides counted before BPF's base chain moved to the kernel, BPF's part, which
/// the kernel's rule does not hold and its listing adds (<see cref="KernelCounterView.Carry"/>).
/// Version 8 adds to every BPF counter entry the expression index of a rule's second or later counter (-1 for any other: a rule's
/// first counter keeps the key every rule counter had before, so older files keep their meaning; <see cref="CounterKey.ExpressionIndex"/>).
/// Version 9 adds, per kernel named counter, what BPF counted for it after its count was read for the kernel and before the kernel
/// commit (<see cref="KernelCounterView.CarryObject"/>).
/// Version 10 adds to every kernel named object entry (reset baselines, carried counts) its type: nf_tables keys objects by table,
/// type and name, so a counter and a quota may share a name (older entries are named counters').
/// Version 11 adds the named counters and quotas neither side holds, each with its count and a quota's start point
/// (<see cref="UnplacedObjects"/>: no rule of a placed chain names them, and nf_tables keeps their state).
/// Version 12 adds when the kernel copy's limits were last reached (<see cref="KernelLimitIdle.Memory"/>, with the boot it was taken
/// in): older files know nothing of them, and the restarted daemon counts every limit it adopts as reached at the adoption.
/// A quota or limit key is a rule's expression (kind 0), a named object (kind 1) or a set element's statement
/// (kind 2: set, element key, statement index; written by version 4 daemons that run element quotas and limits).
/// A version byte, then three counted lists (five from version 3, six from version 4, seven from version 5, eight from version 6, nine from version 7, ten from version 9, eleven from version 11; version 8 entries are 4 bytes longer, version 10 object entries too); every length is checked when read (<see cref="InvalidDataException"/>).
/// </summary>
internal static class CounterState
{
    const byte Version = 12, WithoutLimitsReached = 11, WithoutUnplaced = 10, WithoutObjectTypes = 9, WithoutObjectsCarried = 8, WithoutCounterIndexes = 7, WithoutCarried = 6, WithoutQuotaStarts = 5, WithoutElementLists = 4, WithoutLayouts = 3, WithoutStateful = 2, WithoutSlots = 1;

    /// <param name="Slot">the lifter's slot id (null from a version 1 file)</param>
    public sealed record Bpf(CounterKey Key, (ulong, ulong) Carried, (ulong, ulong) Zero, ulong? Slot = null);

    /// <param name="Base">what the quota's `used` started from in the data plane (its slot holds that plus what was consumed since)</param>
    public sealed record Quota(StatefulKey Key, ulong Slot, ulong Base);

    public sealed record Limit(StatefulKey Key, ulong Slot);

    /// <param name="Quotas">empty from a version 1 or 2 file</param>
    /// <param name="Layouts">per attach point key, its program's counter layout; empty before version 4</param>
    /// <param name="ElementLists">per IR set name, the statement lists its elements carry; empty before version 5</param>
    public sealed record Saved(List<Bpf> BpfCounters, List<((byte, string, ulong, int) Key, CounterValue Base)> KernelRules,
        List<(KernelObjectKey Key, CounterValue Base)> KernelObjects, List<Quota> Quotas, List<Limit> Limits,
        Dictionary<string, CounterLayout> Layouts)
    {
        public Dictionary<string, ValueList<ValueList<Statement>>> ElementLists { get; init; } = new(StringComparer.Ordinal);

        /// <summary>Empty before version 6.</summary>
        public List<QuotaStart> KernelQuotaStarts { get; init; } = [];

        /// <summary>Empty before version 7.</summary>
        public List<((byte, string, ulong, int) Key, CounterValue Bpf)> KernelRulesCarried { get; init; } = [];

        /// <summary>Empty before version 9.</summary>
        public List<(KernelObjectKey Key, CounterValue Bpf)> KernelObjectsCarried { get; init; } = [];

        /// <summary>Empty before version 11.</summary>
        public List<(KernelObjectKey Key, UnplacedCount Count)> Unplaced { get; init; } = [];

        /// <summary>Null before version 12.</summary>
        public KernelLimitIdle.Memory? LimitsReached { get; init; }
    }

    public static byte[] Encode(IEnumerable<Bpf> bpf, KernelCounterView? kernel, IEnumerable<Quota>? quotas = null, IEnumerable<Limit>? limits = null,
        IReadOnlyDictionary<string, CounterLayout>? layouts = null, IReadOnlyDictionary<string, ValueList<ValueList<Statement>>>? elementLists = null,
        IReadOnlyCollection<(KernelObjectKey Key, UnplacedCount Count)>? unplaced = null, KernelLimitIdle.Memory? limitsReached = null)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8);
        var list = bpf.ToList();
        WriteHead(w, list.Count);
        foreach (var b in list) Write(w, b);
        WriteRest(w, kernel, quotas, limits, layouts, elementLists, unplaced, limitsReached);
        w.Flush();
        return ms.ToArray();
    }

    /// <summary>The bytes before the first BPF counter entry: the version and the entry count.</summary>
    internal const int HeadSize = 1 + 4;

    internal static void WriteHead(BinaryWriter w, int bpfCount)
    {
        w.Write(Version);
        w.Write(bpfCount);
    }

    /// <summary>One BPF counter entry: its bytes depend on the entry alone (<see cref="CounterStateEncoder"/> reuses them).</summary>
    internal static void Write(BinaryWriter w, Bpf b)
    {
        w.Write(b.Key.Family);
        w.Write(b.Key.Table);
        w.Write(b.Key.Chain);
        w.Write(b.Key.RuleHandle);
        w.Write(b.Key.Object ?? "");
        w.Write(b.Carried.Item1);
        w.Write(b.Carried.Item2);
        w.Write(b.Zero.Item1);
        w.Write(b.Zero.Item2);
        w.Write(b.Slot ?? throw new ArgumentException($"counter {b.Key} has no slot id"));
        w.Write(b.Key.ExpressionIndex ?? -1);
    }

    /// <summary>Everything after the BPF counter entries.</summary>
    internal static void WriteRest(BinaryWriter w, KernelCounterView? kernel, IEnumerable<Quota>? quotas, IEnumerable<Limit>? limits,
        IReadOnlyDictionary<string, CounterLayout>? layouts, IReadOnlyDictionary<string, ValueList<ValueList<Statement>>>? elementLists,
        IReadOnlyCollection<(KernelObjectKey Key, UnplacedCount Count)>? unplaced, KernelLimitIdle.Memory? limitsReached)
    {
        IReadOnlyCollection<((byte, string, ulong, int), CounterValue)> rules = [];
        IReadOnlyCollection<(KernelObjectKey, CounterValue)> objects = [];
        if (kernel != null) (rules, objects) = kernel.Baselines;
        Write(w, rules);
        Write(w, objects);
        var q = quotas?.ToList() ?? [];
        w.Write(q.Count);
        foreach (var e in q)
        {
            Write(w, e.Key);
            w.Write(e.Slot);
            w.Write(e.Base);
        }
        var l = limits?.ToList() ?? [];
        w.Write(l.Count);
        foreach (var e in l)
        {
            Write(w, e.Key);
            w.Write(e.Slot);
        }
        w.Write(layouts?.Count ?? 0);
        foreach (var (unit, layout) in layouts ?? new Dictionary<string, CounterLayout>())
        {
            w.Write(unit);
            w.Write(layout.Next);
            w.Write(layout.Slots.Count);
            foreach (var (id, slot) in layout.Slots)
            {
                w.Write(id);
                w.Write(slot);
            }
        }
        w.Write(elementLists?.Count ?? 0);
        foreach (var (set, lists) in elementLists ?? new Dictionary<string, ValueList<ValueList<Statement>>>())
        {
            w.Write(set);
            w.Write(lists.Count);
            foreach (var statements in lists)
            {
                w.Write(statements.Count);
                foreach (var st in statements) Write(w, st);
            }
        }
        var starts = kernel?.QuotaStarts.All ?? new Dictionary<CounterRef, ulong>();
        w.Write(starts.Count);
        foreach (var (at, used) in starts)
        {
            w.Write(at.Family);
            w.Write(at.Table);
            w.Write(at.Chain ?? "");
            w.Write(at.RuleHandle);
            w.Write(at.ExpressionIndex);
            w.Write(at.ObjectName ?? "");
            w.Write(used);
        }
        Write(w, kernel?.Carried ?? []);
        Write(w, kernel?.ObjectsCarried ?? []);
        Write(w, (unplaced ?? []).Select(u => (u.Key, u.Count.Live)).ToList());
        foreach (var u in unplaced ?? []) w.Write(u.Count.Start);
        w.Write(limitsReached?.BootId ?? "");
        w.Write(limitsReached?.Reached.Count ?? 0);
        foreach (var t in limitsReached?.Reached ?? [])
        {
            w.Write(t.Family);
            w.Write(t.Table);
            w.Write(t.Chain ?? "");
            w.Write(t.Rule);
            w.Write(t.Index);
            w.Write(t.Object ?? "");
            w.Write(t.Set ?? "");
            // null: a rule without a hidden last reached it (never known full while it lives)
            w.Write(t.At ?? long.MinValue);
        }
    }

    /// <summary>A counted list of kernel named object values (reset baselines, carried counts) by family, table, name and type.</summary>
    static void Write(BinaryWriter w, IReadOnlyCollection<(KernelObjectKey Key, CounterValue Value)> objects)
    {
        w.Write(objects.Count);
        foreach (var ((family, table, type, name), v) in objects)
        {
            w.Write(family);
            w.Write(table);
            w.Write(name);
            w.Write((uint)type);
            w.Write(v.Packets);
            w.Write(v.Bytes);
        }
    }

    /// <summary>A counted list of kernel rule counter values (reset baselines, carried counts) by family, table, rule handle and expression index.</summary>
    static void Write(BinaryWriter w, IReadOnlyCollection<((byte, string, ulong, int) Key, CounterValue Value)> rules)
    {
        w.Write(rules.Count);
        foreach (var ((family, table, handle, index), v) in rules)
        {
            w.Write(family);
            w.Write(table);
            w.Write(handle);
            w.Write(index);
            w.Write(v.Packets);
            w.Write(v.Bytes);
        }
    }

    public static Saved Decode(ReadOnlySpan<byte> bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes.ToArray()), Encoding.UTF8);
        try
        {
            // version 1 had no named counters in BPF (its entries are all rule counters) and no slot ids
            var v = r.ReadByte();
            if (v is not (Version or WithoutLimitsReached or WithoutUnplaced or WithoutObjectTypes or WithoutObjectsCarried or WithoutCounterIndexes or WithoutCarried or WithoutQuotaStarts or WithoutElementLists or WithoutLayouts or WithoutStateful or WithoutSlots))
                throw new InvalidDataException($"counter state version {v}, this daemon reads {WithoutSlots} to {Version}");
            int Count(int minEntry)
            {
                int n = r.ReadInt32();
                if (n < 0 || (long)n * minEntry > r.BaseStream.Length - r.BaseStream.Position)
                    throw new InvalidDataException($"counter state: {n} entries cannot fit in what is left");
                return n;
            }
            var bpf = new List<Bpf>();
            var slotted = v >= WithoutStateful;
            var indexed = v >= WithoutObjectsCarried;
            for (int i = 0, n = Count(indexed ? 56 : slotted ? 52 : 43); i < n; i++)
            {
                var key = new CounterKey(r.ReadByte(), r.ReadString(), r.ReadString(), r.ReadUInt64());
                if (slotted && r.ReadString() is { Length: > 0 } name) key = key with { Object = name };
                var entry = new Bpf(key, (r.ReadUInt64(), r.ReadUInt64()), (r.ReadUInt64(), r.ReadUInt64()), slotted ? r.ReadUInt64() : null);
                if (indexed && r.ReadInt32() is var index and not -1)
                {
                    if (index < 0 || key.Object != null || key.Chain.Length == 0) throw new InvalidDataException($"counter state: counter {key} with expression index {index}");
                    entry = entry with { Key = key with { ExpressionIndex = index } };
                }
                bpf.Add(entry);
            }
            var slots = bpf.Where(b => b.Slot != null).Select(b => b.Slot).ToList();
            if (slots.Distinct().Count() != slots.Count || bpf.Select(b => b.Key).Distinct().Count() != bpf.Count)
                throw new InvalidDataException("counter state: a rule or a slot id is given twice");
            List<((byte, string, ulong, int), CounterValue)> RuleCounters()
            {
                var rules = new List<((byte, string, ulong, int), CounterValue)>();
                for (int i = 0, n = Count(30); i < n; i++)
                    rules.Add(((r.ReadByte(), r.ReadString(), r.ReadUInt64(), r.ReadInt32()), new CounterValue(r.ReadUInt64(), r.ReadUInt64())));
                return rules;
            }
            var rules = RuleCounters();
            var typed = v >= WithoutUnplaced;
            List<(KernelObjectKey, CounterValue)> ObjectCounters()
            {
                var objects = new List<(KernelObjectKey, CounterValue)>();
                for (int i = 0, n = Count(typed ? 23 : 19); i < n; i++)
                {
                    var (family, table, name) = (r.ReadByte(), r.ReadString(), r.ReadString());
                    // before version 10 only named counters had entries
                    var type = typed ? (NftObjectType)r.ReadUInt32() : NftObjectType.Counter;
                    objects.Add((new KernelObjectKey(family, table, type, name), new CounterValue(r.ReadUInt64(), r.ReadUInt64())));
                }
                return objects;
            }
            var objects = ObjectCounters();
            var quotas = new List<Quota>();
            var limits = new List<Limit>();
            if (v >= WithoutLayouts)
            {
                for (int i = 0, n = Count(StatefulKeySize + 16); i < n; i++) quotas.Add(new Quota(ReadKey(r), r.ReadUInt64(), r.ReadUInt64()));
                for (int i = 0, n = Count(StatefulKeySize + 8); i < n; i++) limits.Add(new Limit(ReadKey(r), r.ReadUInt64()));
                Distinct(quotas.Select(q => (q.Key, q.Slot)), "quota");
                Distinct(limits.Select(l => (l.Key, l.Slot)), "limit");
            }
            var layouts = new Dictionary<string, CounterLayout>(StringComparer.Ordinal);
            if (v >= WithoutElementLists)
                for (int i = 0, n = Count(9); i < n; i++)
                {
                    var unit = r.ReadString();
                    var next = r.ReadInt32();
                    var layout = new Dictionary<ulong, int>();
                    for (int j = 0, m = Count(12); j < m; j++)
                    {
                        var (id, slot) = (r.ReadUInt64(), r.ReadInt32());
                        if (slot < 0 || slot >= next || !layout.TryAdd(id, slot)) throw new InvalidDataException($"counter state: attach point {unit}: slot {slot} of counter {id}");
                    }
                    if (layout.Values.Distinct().Count() != layout.Count || !layouts.TryAdd(unit, new CounterLayout(layout, next)))
                        throw new InvalidDataException($"counter state: attach point {unit} or one of its slots is given twice");
                }
            var elementLists = new Dictionary<string, ValueList<ValueList<Statement>>>(StringComparer.Ordinal);
            if (v >= WithoutQuotaStarts)
                for (int i = 0, n = Count(5); i < n; i++)
                {
                    var set = r.ReadString();
                    var lists = new List<ValueList<Statement>>();
                    for (int j = 0, m = Count(4); j < m; j++)
                    {
                        var list = new List<Statement>();
                        for (int k = 0, o = Count(1); k < o; k++) list.Add(ReadStatement(r));
                        lists.Add(list.ToValueList());
                    }
                    if (!elementLists.TryAdd(set, lists.ToValueList())) throw new InvalidDataException($"counter state: set {set}'s element lists are given twice");
                }
            var starts = new List<QuotaStart>();
            if (v >= WithoutCarried)
                for (int i = 0, n = Count(24); i < n; i++)
                {
                    var (family, table, chain, handle, index, name) = (r.ReadByte(), r.ReadString(), r.ReadString(), r.ReadUInt64(), r.ReadInt32(), r.ReadString());
                    // a start point's object is a quota: its type need not be written
                    starts.Add(new QuotaStart(name.Length > 0 ? CounterRef.Named(family, table, name, (uint)NftObjectType.Quota)
                        : new CounterRef(family, table, chain.Length > 0 ? chain : null, handle, index, null), r.ReadUInt64()));
                }
            if (starts.Select(q => q.At).Distinct().Count() != starts.Count) throw new InvalidDataException("counter state: a quota's start point is given twice");
            var carried = v >= WithoutCounterIndexes ? RuleCounters() : new List<((byte, string, ulong, int), CounterValue)>();
            if (carried.Select(c => c.Item1).Distinct().Count() != carried.Count) throw new InvalidDataException("counter state: a kernel rule's carried count is given twice");
            var objectsCarried = v >= WithoutObjectTypes ? ObjectCounters() : [];
            if (objectsCarried.Select(c => c.Item1).Distinct().Count() != objectsCarried.Count)
                throw new InvalidDataException("counter state: a kernel named counter's carried count is given twice");
            // the unplaced objects' counts, then their start points in the same order
            var unplacedCounts = v >= WithoutLimitsReached ? ObjectCounters() : [];
            var unplaced = unplacedCounts.Select(u => (u.Item1, new UnplacedCount(u.Item2, r.ReadUInt64()))).ToList();
            if (unplaced.Select(u => u.Item1).Distinct().Count() != unplaced.Count) throw new InvalidDataException("counter state: an unplaced object is given twice");
            KernelLimitIdle.Memory? reached = null;
            if (v >= Version)
            {
                var boot = r.ReadString();
                var targets = new List<KernelLimitIdle.Reached>();
                for (int i = 0, n = Count(25); i < n; i++)
                {
                    var (family, table, chain, rule, index, obj, set, at) =
                        (r.ReadByte(), r.ReadString(), r.ReadString(), r.ReadUInt64(), r.ReadInt32(), r.ReadString(), r.ReadString(), r.ReadInt64());
                    targets.Add(new KernelLimitIdle.Reached(family, table, chain.Length > 0 ? chain : null, rule, index,
                        obj.Length > 0 ? obj : null, set.Length > 0 ? set : null, at == long.MinValue ? null : at));
                }
                if (targets.Select(t => t with { At = 0 }).Distinct().Count() != targets.Count) throw new InvalidDataException("counter state: a limit's last reach is given twice");
                reached = new KernelLimitIdle.Memory(boot, targets);
            }
            if (r.BaseStream.Position != r.BaseStream.Length) throw new InvalidDataException("counter state: trailing bytes");
            return new Saved(bpf, rules, objects, quotas, limits, layouts) { ElementLists = elementLists, KernelQuotaStarts = starts, KernelRulesCarried = carried,
                KernelObjectsCarried = objectsCarried, Unplaced = unplaced, LimitsReached = reached };
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException)
        {
            throw new InvalidDataException($"counter state is cut short or malformed: {e.Message}");
        }
    }

    /// <summary>The fewest bytes a stateful key takes: family, kind, table (empty), then the smaller of a rule's part (chain, handle, index) and a name.</summary>
    const int StatefulKeySize = 4;

    static void Write(BinaryWriter w, StatefulKey key)
    {
        w.Write(key.Family);
        w.Write(key.Table);
        if (key.Object is { } name)
        {
            w.Write((byte)1);
            w.Write(name);
            return;
        }
        if (key.ElementKey is { } element)
        {
            // a set element's state (kind 2): set, key in hex, statement index
            w.Write((byte)2);
            w.Write(key.Chain ?? "");
            w.Write(element);
            w.Write(key.ExpressionIndex);
            return;
        }
        w.Write((byte)0);
        w.Write(key.Chain ?? "");
        w.Write(key.RuleHandle);
        w.Write(key.ExpressionIndex);
    }

    /// <summary>A statement of a packet-path element's list: kind 0 counter, 1 quota (bytes, over), 2 limit (rate, per in ticks, burst, type, over).</summary>
    static void Write(BinaryWriter w, Statement st)
    {
        switch (st)
        {
            case CounterStatement:
                w.Write((byte)0);
                break;
            case QuotaStatement q:
                w.Write((byte)1);
                w.Write(q.Bytes);
                w.Write(q.Over);
                break;
            case LimitStatement l:
                w.Write((byte)2);
                w.Write(l.Rate);
                w.Write(l.Per.Ticks);
                w.Write(l.Burst);
                w.Write((byte)l.Type);
                w.Write(l.Over);
                break;
            default:
                throw new ArgumentException($"statement '{st}' of a packet-path element has no saved form");
        }
    }

    static Statement ReadStatement(BinaryReader r) => r.ReadByte() switch
    {
        0 => new CounterStatement(0),
        1 => new QuotaStatement(r.ReadUInt64(), r.ReadBoolean(), 0),
        2 => new LimitStatement(r.ReadUInt64(), TimeSpan.FromTicks(r.ReadInt64()), r.ReadUInt32(), (LimitType)r.ReadByte(), r.ReadBoolean()),
        var k => throw new InvalidDataException($"counter state: element statement kind {k}"),
    };

    static StatefulKey ReadKey(BinaryReader r)
    {
        var (family, table) = (r.ReadByte(), r.ReadString());
        return r.ReadByte() switch
        {
            1 => StatefulKey.Named(family, table, r.ReadString()),
            0 => new StatefulKey(family, table, r.ReadString(), r.ReadUInt64(), r.ReadInt32(), null),
            2 => new StatefulKey(family, table, r.ReadString(), 0, 0, null) with { ElementKey = r.ReadString(), ExpressionIndex = r.ReadInt32() },
            var k => throw new InvalidDataException($"counter state: stateful key kind {k}"),
        };
    }

    static void Distinct(IEnumerable<(StatefulKey Key, ulong Slot)> entries, string what)
    {
        var list = entries.ToList();
        if (list.Select(e => e.Key).Distinct().Count() != list.Count || list.Select(e => e.Slot).Distinct().Count() != list.Count)
            throw new InvalidDataException($"counter state: a {what} or its slot id is given twice");
    }
}
