using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// A compiled program in the kernel: its maps created and filled, map references linked, the
/// program loaded. Owns the fds; counters are read back by the front-end's counter ids.
/// </summary>
public sealed class LoadedProgram : IDisposable
{
    /// <summary>Every map by its pin name: a set's outer map under the set map's name, its copies beside it (<see cref="SetCopies.CopyName"/>).</summary>
    private readonly Dictionary<string, BpfMap> _maps;
    private readonly Dictionary<string, SetCopies> _sets;
    /// <summary>Shared maps the caller lent the program: not disposed with it.</summary>
    private readonly HashSet<string> _borrowed;
    /// <summary>The quota map this program created for itself (loaded without a shared one: tests).</summary>
    private QuotaMap? _ownQuotas;
    /// <summary>The limit map this program created for itself (loaded without a shared one: tests).</summary>
    private LimitMap? _ownLimits;
    /// <summary>What each set map holds now, kept beside the map so later diffs start from the truth.</summary>
    private readonly Dictionary<string, Dictionary<byte[], byte[]>> _entries = new(StringComparer.Ordinal);
    /// <summary>Copies (set map, copy index) that may not hold <see cref="_entries"/>: rewritten before their next use as standby.</summary>
    private readonly HashSet<(string Map, int Copy)> _stale = [];

    private LoadedProgram(CompiledProgram compiled, BpfProgram program, IReadOnlyList<BpfProgram> segments, Dictionary<string, BpfMap> maps,
        Dictionary<string, SetCopies> sets, int generation, HashSet<string>? borrowed = null, QuotaMap? ownQuotas = null, LimitMap? ownLimits = null)
    {
        Compiled = compiled;
        Program = program;
        Segments = segments;
        _maps = maps;
        _sets = sets;
        Generation = generation;
        _borrowed = borrowed ?? [];
        _ownQuotas = ownQuotas;
        _ownLimits = ownLimits;
        foreach (var spec in compiled.Maps)
        {
            if (!spec.DoubleBuffered) continue;
            var d = new Dictionary<byte[], byte[]>(spec.Entries.Count, ByteArrayComparer.Instance);
            foreach (var (k, v) in spec.Entries) d[k] = v;
            _entries[spec.Name] = d;
        }
    }

    public CompiledProgram Compiled { get; private set; }

    /// <summary>
    /// The program was kept for <paramref name="same"/>, a compilation with the same code (MapDiff): it now
    /// stands for it, so its digest (its pin directory) is the one the same ruleset compiles to after a restart.
    /// </summary>
    internal void Recompiled(CompiledProgram same)
    {
        Compiled = same;
        TablesAsCompiled = true;
    }

    /// <summary>
    /// The double-buffered maps hold what <see cref="Compiled"/> says (loaded from it, or diffed to it); false for a
    /// program adopted from its pins, whose maps may hold ids an earlier process gave (ClassifiedRunEdit reads them then).
    /// </summary>
    internal bool TablesAsCompiled { get; private set; } = true;
    public BpfProgram Program { get; }

    /// <summary>The tail-call targets of a split program (<see cref="CompiledProgram.Segments"/>), held in its prog array.</summary>
    public IReadOnlyList<BpfProgram> Segments { get; }

    /// <summary>Which copy of the set maps packets read now (0 or 1).</summary>
    public int Generation { get; private set; }

    /// <param name="quotas">The quota states the program shares with others; without one (tests) it gets its own (<see cref="Quotas"/>).</param>
    /// <param name="limits">The limit buckets it shares with others; without one (tests) it gets its own (<see cref="Limits"/>).</param>
    /// <param name="share">
    /// For a set the packet path writes, the copies other programs already hold (null: new ones). The program
    /// references those maps and starts at their holders' generation, so an element any holder adds is seen by all.
    /// </param>
    /// <param name="shareBuckets">
    /// For a set the packet path writes whose copies are made anew, the bucket map of the copies whose elements the
    /// program will carry with their stamps (null: a new one), see <see cref="ElementBuckets"/>.
    /// </param>
    public static LoadedProgram Load(CompiledProgram compiled, QuotaMap? quotas = null, LimitMap? limits = null, Func<MapSpec, SetCopies?>? share = null,
        Func<MapSpec, ElementBuckets?>? shareBuckets = null)
    {
        var maps = new Dictionary<string, BpfMap>(StringComparer.Ordinal);
        var sets = new Dictionary<string, SetCopies>(StringComparer.Ordinal);
        var borrowed = new HashSet<string>(StringComparer.Ordinal);
        var shared = new List<SetCopies>();
        var created = new List<SetCopies>();
        QuotaMap? own = null;
        LimitMap? ownLimits = null;
        var segments = new List<BpfProgram>();
        try
        {
            foreach (var spec in compiled.Maps)
            {
                if (spec.DoubleBuffered)
                {
                    var copies = spec.PacketWritten && share?.Invoke(spec) is { } held && held.Fits(spec) ? held : null;
                    if (copies != null) shared.Add(copies);
                    if (copies == null)
                    {
                        copies = SetCopies.Create(spec, spec.PacketWritten && spec.Buckets != null ? shareBuckets?.Invoke(spec) : null);
                        created.Add(copies);
                    }
                    sets[spec.Name] = copies;
                    foreach (var (name, m) in copies.Named(spec.Name)) maps[name] = m;
                    continue;
                }
                if (spec.Name == CompiledProgram.QuotasMap)
                {
                    if (quotas == null) own = QuotaMap.Create();
                    maps[spec.Name] = (quotas ?? own!).Map;
                    borrowed.Add(spec.Name);
                    continue;
                }
                if (spec.Name == CompiledProgram.LimitsMap)
                {
                    if (limits == null) ownLimits = LimitMap.Create();
                    maps[spec.Name] = (limits ?? ownLimits!).Map;
                    borrowed.Add(spec.Name);
                    continue;
                }
                var map = BpfMap.Create(spec.Type, spec.Name, spec.KeySize, spec.ValueSize, spec.MaxEntries, spec.Flags);
                maps[spec.Name] = map;
                // one BPF_MAP_UPDATE_BATCH per 65,536 entries, not a syscall per entry: a classifier's tables and a
                // grouped run's hash hold thousands
                map.UpdateMany(spec.Entries);
            }
            BpfProgram LoadCode(System.Collections.Immutable.ImmutableArray<Instruction> insns, string name)
            {
                var code = Linker.Link(insns, map => maps[map].Fd.Value);
                var functions = Functions(compiled, insns);
                if (!functions.Any(f => f.Global)) return BpfProgram.Load(compiled.ProgramType, name, code, compiled.AttachType);
                // the kernel takes its own reference to the BTF: it is closed once the program is loaded
                using var btf = ProgramBtf.Create(compiled.ProgramType, RuntimeContext.FrameSize, functions);
                return BpfProgram.Load(compiled.ProgramType, name, code, compiled.AttachType, btf: btf, functions: functions);
            }
            // the segments first, in the prog array before the program that tail-calls into them can run
            for (var k = 0; k < compiled.Segments.Length; k++) segments.Add(LoadCode(compiled.Segments[k], $"{compiled.Name}_{k + 1}"));
            foreach (var (slot, segment) in compiled.TailCallSlots)
                maps[CompiledProgram.SegmentsMap].Update(U32((uint)slot), U32((uint)segments[segment - 1].Fd.Value));
            var generation = StartGeneration(shared);
            if (generation != 0) WriteGeneration(maps[CompiledProgram.GenerationMap], generation);
            var program = LoadCode(compiled.Instructions, compiled.Name);
            var loaded = new LoadedProgram(compiled, program, segments, maps, sets, generation, borrowed, own, ownLimits);
            foreach (var c in sets.Values) c.Holders.Add(loaded);
            return loaded;
        }
        catch
        {
            foreach (var p in segments) p.Dispose();
            var setMaps = shared.Concat(created).SelectMany(c => c.Named("").Select(n => n.Map)).ToHashSet();
            foreach (var (name, m) in maps) if (!borrowed.Contains(name) && !setMaps.Contains(m)) m.Dispose();
            // copies made here go, a bucket map they share with other copies stays theirs
            foreach (var c in created) c.Close();
            own?.Dispose();
            ownLimits?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The generation a program that references <paramref name="shared"/> copies starts at: their holders'. Holders
    /// of different copies may be at different generations: the others are switched to the first one's (their two
    /// copies hold the same entries outside a batch, so packets see no change) and their old readers waited for.
    /// </summary>
    static int StartGeneration(List<SetCopies> shared)
    {
        var group = shared.SelectMany(c => c.Holders).Distinct().ToList();
        if (group.Count == 0) return 0;
        var generation = group[0].Generation;
        var lagging = ShareGroup(group).Where(p => p.Generation != generation).ToList();
        foreach (var p in lagging) p.SwitchGeneration();
        lagging.FirstOrDefault(p => p.WaitForReaders());
        return generation;
    }

    /// <summary>Every program that shares a set map with one of <paramref name="programs"/>, transitively (them included).</summary>
    internal static HashSet<LoadedProgram> ShareGroup(IEnumerable<LoadedProgram> programs)
    {
        var group = new HashSet<LoadedProgram>();
        var todo = new Stack<LoadedProgram>(programs);
        while (todo.TryPop(out var p))
        {
            if (!group.Add(p)) continue;
            foreach (var c in p._sets.Values)
                foreach (var h in c.Holders) todo.Push(h);
        }
        return group;
    }

    /// <summary>The copies this program holds of a set the packet path writes (null: none), for programs loaded to share them.</summary>
    public SetCopies? PacketWrittenCopies(string setMap) => _sets.TryGetValue(setMap, out var c) && c.PacketWritten ? c : null;

    /// <summary>Whether this program and <paramref name="other"/> reference the same copies of <paramref name="set"/> (an IR set name).</summary>
    internal bool SharesSet(LoadedProgram other, string set) =>
        _sets.TryGetValue(ProgramCompiler.SetMapName(set), out var c) && other._sets.TryGetValue(ProgramCompiler.SetMapName(set), out var o) && ReferenceEquals(c, o);

    /// <summary>Whether this program and <paramref name="other"/> take the buckets of <paramref name="set"/>'s elements (an IR set name) from the same bucket map.</summary>
    internal bool SharesBuckets(LoadedProgram other, string set) =>
        _sets.TryGetValue(ProgramCompiler.SetMapName(set), out var c) && other._sets.TryGetValue(ProgramCompiler.SetMapName(set), out var o)
        && c.Buckets != null && ReferenceEquals(c.Buckets, o.Buckets);

    /// <summary>The bucket map of a set this program writes from the packet path (null: none).</summary>
    internal ElementBuckets? Buckets(string set) => _sets.TryGetValue(ProgramCompiler.SetMapName(set), out var c) && c.PacketWritten ? c.Buckets : null;

    /// <summary>
    /// Makes adopted programs that reference the same kernel maps of a packet-written set (each reopened its own pins)
    /// hold one <see cref="SetCopies"/>, so batches switch them together; their generations are made equal.
    /// </summary>
    public static void ShareAdopted(IReadOnlyList<LoadedProgram> programs)
    {
        var byIds = new Dictionary<(uint, uint), SetCopies>();
        foreach (var p in programs)
            foreach (var (name, c) in p._sets.ToList())
            {
                if (!c.PacketWritten) continue;
                var ids = (BpfInfo.Map(c.Copies[0].Fd.Value).Id, BpfInfo.Map(c.Copies[1].Fd.Value).Id);
                if (!byIds.TryGetValue(ids, out var first))
                {
                    byIds[ids] = c;
                    continue;
                }
                if (ReferenceEquals(first, c)) continue;
                c.Release(p);
                p._sets[name] = first;
                foreach (var (n, m) in first.Named(name)) p._maps[n] = m;
                first.Holders.Add(p);
            }
        foreach (var c in byIds.Values.Where(c => c.Holders.Count > 1)) StartGeneration([c]);
    }

    static void WriteGeneration(BpfMap map, int generation)
    {
        Span<byte> key = stackalloc byte[4];
        Span<byte> value = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(value, generation);
        map.Update(key, value);
    }

    /// <summary>The functions of one program's code (its main program, then each subprogram it holds), by slot offset.</summary>
    static List<ProgramFunction> Functions(CompiledProgram compiled, IReadOnlyList<Instruction> insns)
    {
        var functions = new List<ProgramFunction> { new(0, false) };
        var slot = 0;
        foreach (var insn in insns)
        {
            foreach (var label in insn.Labels)
                if (compiled.Functions.TryGetValue(label, out var global)) functions.Add(new(slot, global));
            slot += insn.Slots;
        }
        return functions;
    }

    /// <summary>The quota states this program uses: its own when it was loaded without shared ones, else null.</summary>
    public QuotaMap? Quotas => _ownQuotas;

    /// <summary>The limit buckets this program uses: its own when it was loaded without shared ones, else null.</summary>
    public LimitMap? Limits => _ownLimits;

    /// <summary>The quota map this program references (shared or its own), for an adopting enforcer.</summary>
    public BpfMap? QuotasMap => _maps.GetValueOrDefault(CompiledProgram.QuotasMap);

    /// <summary>The program in the chain tail's slot (<see cref="CompiledProgram.Tail"/>), null while the slot is empty.</summary>
    private BpfProgram? _tail;

    /// <summary>
    /// Loads <paramref name="tail"/> (<see cref="ProgramCompiler.CompileTail"/> of this program) against this program's maps,
    /// for <see cref="SwapTail"/>: verified here, so the commit only writes the slot. Null when it names a map this program
    /// does not have or has with other sizes.
    /// </summary>
    internal BpfProgram? LoadTail(CompiledProgram tail)
    {
        foreach (var spec in tail.Maps)
        {
            if (!_maps.TryGetValue(spec.Name, out var m) || m.Type != spec.Type || m.KeySize != spec.KeySize || m.ValueSize != spec.ValueSize) return null;
            if (spec.Name == CompiledProgram.CountersMap ? m.MaxEntries < tail.CounterSlotsUsed : m.MaxEntries != spec.MaxEntries) return null;
        }
        var code = Linker.Link(tail.Instructions, map => _maps[map].Fd.Value);
        return BpfProgram.Load(Compiled.ProgramType, Compiled.Name + "_t", code, Compiled.AttachType);
    }

    /// <summary>
    /// Puts <paramref name="tail"/> (loaded by <see cref="LoadTail"/>; null: none) in the chain tail's slot, in one map update
    /// (a packet runs the old tail or the new one), and stands for <paramref name="compiled"/> from now on. The replaced tail
    /// program is closed (packets still in it finish: the kernel frees it after them).
    /// </summary>
    internal void SwapTail(BpfProgram? tail, CompiledProgram compiled)
    {
        var slot = U32((uint)compiled.Tail!.Slot);
        try
        {
            if (tail != null) _maps[CompiledProgram.SegmentsMap].Update(slot, U32((uint)tail.Fd.Value));
            else _maps[CompiledProgram.SegmentsMap].Delete(slot);
        }
        catch
        {
            tail?.Dispose();
            throw;
        }
        _tail?.Dispose();
        _tail = tail;
        Compiled = compiled;
    }

    /// <summary>
    /// Reopens a program <see cref="Pin"/> left in bpffs (by this or an earlier process), given what it was
    /// compiled from: the maps are the pinned ones (counters and set contents as they are now), nothing is
    /// loaded. Fails when a map the compiled program needs is not there or has other sizes, or when its prog
    /// array holds other programs than the pinned segments and, with a filled chain tail, the pinned tail program.
    /// </summary>
    public static LoadedProgram Adopt(CompiledProgram compiled, string dir)
    {
        var maps = new Dictionary<string, BpfMap>(StringComparer.Ordinal);
        var sets = new Dictionary<string, SetCopies>(StringComparer.Ordinal);
        BpfProgram? program = null, tail = null;
        var segments = new List<BpfProgram>();
        BpfMap Open(string name)
        {
            var map = BpfMap.Open(Path.Combine(dir, MapPin(name)));
            maps[name] = map;
            return map;
        }
        try
        {
            foreach (var spec in compiled.Maps)
            {
                var map = Open(spec.Name);
                if (spec.DoubleBuffered)
                {
                    sets[spec.Name] = SetCopies.Adopt(spec, map, Open(SetCopies.CopyName(spec.Name, 0)), Open(SetCopies.CopyName(spec.Name, 1)),
                        spec.Buckets is null ? null : Open(ElementBuckets.Name(spec.Name)));
                    continue;
                }
                if (map.Type != spec.Type || map.KeySize != spec.KeySize || map.ValueSize != spec.ValueSize
                    || (spec.Name == CompiledProgram.CountersMap ? map.MaxEntries < compiled.CounterSlotsUsed : map.MaxEntries != spec.MaxEntries))
                    throw new InvalidDataException($"pinned map {spec.Name} under {dir} is not the one the program was compiled with");
            }
            program = BpfProgram.Open(Path.Combine(dir, ProgramPin), compiled.ProgramType);
            for (var k = 1; k <= compiled.Segments.Length; k++)
                segments.Add(BpfProgram.Open(Path.Combine(dir, SegmentPin(k)), compiled.ProgramType));
            // a filled chain tail: the pinned tail program, which the slot must hold (the digest of the directory named its code)
            if (compiled.Tail is { Rules: > 0 } filled) tail = BpfProgram.Open(Path.Combine(dir, TailPin(filled.From)), compiled.ProgramType);
            CheckTailCallSlots(compiled, maps, segments, tail, dir);
            var generation = maps.TryGetValue(CompiledProgram.GenerationMap, out var g) ? ReadGeneration(g) : 0;
            var loaded = new LoadedProgram(compiled, program, segments, maps, sets, generation) { _tail = tail };
            // classifier tables hold the class ids an earlier process gave (ClassIdHint), maybe not the compilation's: the record is what packets read
            foreach (var name in sets.Keys.Where(ClassifierTables.IsClassifierMap))
                loaded._entries[name] = Snapshot(sets[name].Copies[generation], skipZero: sets[name].Copies[generation].Type == BpfMapType.Array);
            loaded.TablesAsCompiled = false;
            // a batch may have been cut short before the standby copies caught up: rewrite them before using them
            foreach (var name in sets.Keys) loaded.MarkStale(name, 1 - generation);
            foreach (var c in sets.Values) c.Holders.Add(loaded);
            return loaded;
        }
        catch
        {
            program?.Dispose();
            tail?.Dispose();
            foreach (var p in segments) p.Dispose();
            foreach (var m in maps.Values) m.Dispose();
            throw;
        }
    }

    static byte[] U32(uint v)
    {
        var b = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }

    /// <summary>
    /// Fails unless the pinned prog array holds exactly the pinned segments at the slots the compiled program
    /// tail-calls (a lookup from user space reads a program's id): a packet must never reach an empty slot. The chain
    /// tail's slot holds the pinned <paramref name="tail"/>, or nothing when the compiled program's tail is empty.
    /// </summary>
    static void CheckTailCallSlots(CompiledProgram compiled, Dictionary<string, BpfMap> maps, List<BpfProgram> segments, BpfProgram? tail, string dir)
    {
        if (compiled.Segments.IsEmpty && compiled.Tail == null) return;
        var array = maps[CompiledProgram.SegmentsMap];
        var id = new byte[4];
        for (var slot = 0; slot < array.MaxEntries; slot++)
        {
            var held = array.TryLookup(U32((uint)slot), id) ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(id) : 0;
            var want = compiled.TailCallSlots.TryGetValue(slot, out var segment) ? segments[segment - 1].Id
                : tail != null && slot == compiled.Tail!.Slot ? tail.Id : 0;
            if (held != want)
                throw new InvalidDataException($"pinned prog array {CompiledProgram.SegmentsMap} under {dir}: slot {slot} holds program {held}, not {want}");
        }
    }

    static int ReadGeneration(BpfMap map)
    {
        Span<byte> key = stackalloc byte[4];
        Span<byte> value = stackalloc byte[4];
        return map.TryLookup(key, value) ? (int)(System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(value) & 1) : 0;
    }

    const string ProgramPin = "prog";

    /// <summary>Pin name of segment <paramref name="k"/> (1-based) of a split program.</summary>
    static string SegmentPin(int k) => $"{ProgramPin}@{k}";

    const string TailPinPrefix = "tail@";

    /// <summary>
    /// Pin name of a filled chain tail's program, with the number of the chain's source rules the program holds before it
    /// (<see cref="ChainTail.From"/>): a restarted daemon compiles those alone to find the program as it was compiled.
    /// </summary>
    static string TailPin(int from) => TailPinPrefix + from.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Where the chain tail of the program pinned under <paramref name="dir"/> starts (<see cref="ChainTail.From"/>), when
    /// its slot was filled as it was pinned; null otherwise (no tail pin, or a name that is not one).
    /// </summary>
    public static int? PinnedTailFrom(string dir)
    {
        if (!Directory.Exists(dir)) return null;
        foreach (var f in Directory.EnumerateFiles(dir, TailPinPrefix + "*"))
            if (int.TryParse(Path.GetFileName(f).AsSpan(TailPinPrefix.Length), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var from)) return from;
        return null;
    }

    /// <summary>
    /// A map's pin file name: "map_" and the map name with '%', '/' and '.' escaped as %XX (set maps are
    /// named "set:FAMILY TABLE/SET": a slash would name a directory, and bpffs refuses names with a dot),
    /// so distinct maps keep distinct files; a name past <see cref="MaxPinName"/> bytes becomes a digest.
    /// </summary>
    internal static string MapPin(string map)
    {
        var escaped = new System.Text.StringBuilder("map_");
        foreach (var c in map)
            escaped.Append(c switch { '%' => "%25", '/' => "%2F", '.' => "%2E", _ => c.ToString() });
        if (System.Text.Encoding.UTF8.GetByteCount(escaped.ToString()) <= MaxPinName) return escaped.ToString();
        ulong h = 14695981039346656037UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(map)) h = (h ^ b) * 1099511628211UL;
        return $"map_{h:x16}";
    }

    /// <summary>A file name's limit (NAME_MAX is 255), with room to spare.</summary>
    const int MaxPinName = 200;

    /// <summary>Pins the program and its maps under <paramref name="dir"/> (created), for <see cref="Adopt"/>.</summary>
    public void Pin(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var (name, map) in _maps) map.Pin(Path.Combine(dir, MapPin(name)));
        Program.Pin(Path.Combine(dir, ProgramPin));
        for (var k = 0; k < Segments.Count; k++) Segments[k].Pin(Path.Combine(dir, SegmentPin(k + 1)));
        if (_tail != null && Compiled.Tail is { Rules: > 0 } tail) _tail.Pin(Path.Combine(dir, TailPin(tail.From)));
    }

    /// <summary>
    /// Names what the program does, for its pin directory: a digest of its instructions (maps by name) and
    /// map shapes, so a process that recompiles the same ruleset finds it and a different one does not.
    /// </summary>
    public static string Digest(CompiledProgram compiled)
    {
        var h = CodeDigest.Of(compiled);
        void Add(string s) => h = CodeDigest.Add(h, s);
        // a program with a tail in its slot is not what a compile gives (its tail slot is empty): adopted only as the
        // chain's first ChainTail.From rules compiled with its tail (Enforcer.Adopt), which this part tells apart
        if (compiled.Tail is { Rules: > 0 } tail) Add("tail:" + Disassembler.Format(tail.Code));
        // set and counter arrays may be larger than the compilation asks (a kept program, see Adopt): sizes are not in the code
        foreach (var m in compiled.Maps)
            Add($"{m.Name}:{m.Type}:{m.KeySize}:{m.ValueSize}:{(Growable(m) ? "" : m.MaxEntries)}{(m.DoubleBuffered ? ":x2" : "")}");
        return h.ToString("x16");
    }

    /// <summary>
    /// Maps whose size a kept program may have from an earlier compilation: set maps (entries fit) and the counter
    /// array (slots fit). The digest leaves their sizes out and <see cref="Adopt"/> takes them at any size that fits.
    /// </summary>
    static bool Growable(MapSpec m) => m.DoubleBuffered && !m.PacketWritten || m.Name == CompiledProgram.CountersMap;

    /// <summary>Slots of the counter array this program was loaded with (new counters of a kept program must fit).</summary>
    public int CounterCapacity => _maps.TryGetValue(CompiledProgram.CountersMap, out var m) ? (int)m.MaxEntries : 0;

    /// <summary>Packets and bytes counted for a rule counter id (summed over CPUs); zeros if the id has no slot.</summary>
    public (ulong Packets, ulong Bytes) Counter(ulong id)
    {
        if (!Compiled.CounterSlots.TryGetValue(id, out var slot)) return (0, 0);
        var sums = _maps[CompiledProgram.CountersMap].SumPerCpu((uint)slot);
        return (sums[0], sums[1]);
    }

    /// <summary>The copy of a named set's map packets read now (for tests and sizes; batches go through <see cref="SetBatch"/>).</summary>
    public BpfMap? SetMap(string set) => _sets.TryGetValue(ProgramCompiler.SetMapName(set), out var c) ? c.Copies[Generation] : null;

    /// <summary>The bucket map of the limits the packet path gives a named set's elements (null: none).</summary>
    public BpfMap? BucketMap(string set) => _sets.TryGetValue(ProgramCompiler.SetMapName(set), out var c) ? c.Buckets?.Map : null;

    /// <summary>One copy (0 or 1) of a named set's map, whichever packets read now.</summary>
    public BpfMap? SetMapCopy(string set, int copy) => Copy(ProgramCompiler.SetMapName(set), copy);

    /// <summary>
    /// The live elements of a set the packet path writes, read from the copy packets read now (the copy of the
    /// current generation), as nft_set_hash's walk lists them: an element whose expiry has come
    /// (time_after_eq64(jiffies64, expiry)) is left out. Null when the program does not write the set.
    /// </summary>
    public IReadOnlyList<LiveSetElement>? LiveElements(string set)
    {
        if (!Compiled.SetLayouts.TryGetValue(set, out var layout) || !layout.Set.PacketWritten
            || !_sets.TryGetValue(ProgramCompiler.SetMapName(set), out var copies)) return null;
        var now = layout.HasTimeouts ? KernelClock.Jiffies64() : 0;
        var live = new List<LiveSetElement>();
        foreach (var (key, value) in Snapshot(copies.Copies[Generation]))
        {
            ulong? expires = null, timeout = null;
            if (layout.HasTimeouts && value.Length >= SetLayout.ExpiresOffset + 8
                && System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(SetLayout.ExpiresOffset)) is var x and not 0)
            {
                if ((long)(now - x) >= 0) continue;
                expires = x;
            }
            if (layout.HasElementTimeouts && value.Length >= SetLayout.TimeoutOffset + 8
                && System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(SetLayout.TimeoutOffset)) is var t and not 0)
                timeout = t;
            byte[]? data = layout.MapDataBytes > 0 && value.Length >= layout.ValueSize
                ? value[layout.MapDataOffset..layout.ValueSize] : null;
            live.Add(new LiveSetElement(key[layout.DataOffset..], expires, timeout) { State = PacketState(layout, value), Data = data });
        }
        return live;
    }

    /// <summary>
    /// The state of the statements the packet path gave an element, in the list its tag names (none when its statement
    /// code is 0: the control plane wrote it, or a rule that gave its elements none).
    /// </summary>
    static IReadOnlyList<PacketElementState> PacketState(SetLayout layout, byte[] value)
    {
        if (!layout.HasPacketStatements || value.Length < layout.ValueSize) return [];
        // bit 0: statements; bit 1 (transient): made by the packet path, not yet written to the other copy; bits 8 on: the tag
        var code = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(value.AsSpan(4));
        if ((code & 1) == 0) return [];
        var tag = (int)(code >> SetLayout.TagShift);
        if (tag >= layout.Set.ElementLists.Count)
            throw new InvalidDataException($"set {layout.Set.Name}: an element's tag {tag} names no statement list the program was compiled with");
        var list = layout.ElementList(tag);
        var state = new List<PacketElementState>(list.Count);
        for (var i = 0; i < list.Count; i++)
        {
            var s = list[i];
            var at = value.AsSpan(layout.PacketStateOffset(tag, i));
            state.Add(s switch
            {
                Ir.CounterStatement => new PacketElementState(s, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(at), System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(at[8..])),
                // the kernel lists a limit's configuration only, not its bucket
                Ir.LimitStatement => new PacketElementState(s, 0, 0),
                _ => new PacketElementState(s, 0, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(at)),
            });
        }
        return state;
    }

    /// <summary>The entries of the copy packets read now of a set the program writes from the packet path (null for other sets).</summary>
    internal Dictionary<byte[], byte[]>? LiveEntries(string set) =>
        _sets.TryGetValue(ProgramCompiler.SetMapName(set), out var c) && c.PacketWritten ? Snapshot(c.Copies[Generation]) : null;

    /// <summary>Writes an entry to both copies of a packet-written set, as the program's own insert does (the record of control-plane entries is left alone).</summary>
    internal void WritePacketPath(string set, byte[] key, byte[] value)
    {
        foreach (var copy in _sets[ProgramCompiler.SetMapName(set)].Copies) copy.Update(key, value);
    }

    /// <summary>
    /// Takes the expired elements out of the sets the program writes from the packet path, as the kernel's periodic
    /// set GC (nft_rhash_gc) does: an expired element no longer matches (the program's lookups and updates already
    /// treat it as absent), but counts against the map's size (the set's `size`) until collected. Only the copy
    /// packets read is walked: the program writes both copies alike and the control plane applies the same changes
    /// to both, so the other copy holds a subset of its keys with the same values; an expired key is taken out of
    /// the other copy first (keeping it a subset), then out of the live one, each read again just before its delete.
    /// <para>
    /// What stays open: a packet that replaces the expired element (a new element for the key, which the program
    /// writes in its place) between that last read and the delete loses its element until the next packet adds it
    /// again; in the kernel the new element is another object and the GC never takes it. A BPF hash map has no
    /// conditional delete to close it: BPF_MAP_DELETE_ELEM takes neither flags nor an expected value, BPF_F_LOCK
    /// applies to lookups and updates only, bpf_map_lookup_and_delete_elem takes any value out (putting a fresh one
    /// back would leave packets a window without a live element), and a BPF_PROG_TYPE_SYSCALL program doing the check
    /// and the delete makes the same two helper calls, not atomic against a packet on another CPU. The window is the
    /// time between two syscalls on a key that expired at least a tick before.
    /// </para>
    /// Returns the number of elements taken out.
    /// </summary>
    public int CollectExpired()
    {
        int n = 0;
        ulong now = 0;
        foreach (var copies in TimeoutSets())
        {
            if (now == 0) now = KernelClock.Jiffies64();
            var live = copies.Copies[Generation];
            var other = copies.Copies[1 - Generation];
            var value = new byte[live.ValueSize];
            var before = n;
            foreach (var k in live.Keys())
            {
                if (!Expired(live, k, value, now)) continue;
                if (Expired(other, k, value, now)) other.Delete(k);
                if (Expired(live, k, value, now) && live.Delete(k)) n++;
            }
            // the collected elements' buckets (a walk of the bucket map: only when some were collected)
            if (n > before) copies.SweepBuckets();
        }
        return n;
    }

    /// <summary>The entry is there and its expiry (jiffies64, 0 for none) has passed.</summary>
    static bool Expired(BpfMap copy, byte[] key, byte[] value, ulong now)
    {
        if (!copy.TryLookup(key, value) || value.Length < SetLayout.ExpiresOffset + 8) return false;
        var x = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(SetLayout.ExpiresOffset));
        return x != 0 && (long)(now - x) >= 0;
    }

    /// <summary>The packet-written sets with timeouts, found once per compilation the program stands for.</summary>
    (CompiledProgram For, IReadOnlyList<SetCopies> Sets)? _timeoutSets;

    IReadOnlyList<SetCopies> TimeoutSets()
    {
        if (_timeoutSets is { } t && ReferenceEquals(t.For, Compiled)) return t.Sets;
        var names = Compiled.SetLayouts.Values.Where(l => l.HasTimeouts).Select(l => ProgramCompiler.SetMapName(l.Set.Name)).ToHashSet();
        var sets = _sets.Where(kv => kv.Value.PacketWritten && names.Contains(kv.Key)).Select(kv => kv.Value).ToList();
        _timeoutSets = (Compiled, sets);
        return sets;
    }

    /// <summary>Deletes an entry from both copies of a packet-written set.</summary>
    internal void DeletePacketPath(string set, byte[] key)
    {
        foreach (var copy in _sets[ProgramCompiler.SetMapName(set)].Copies) copy.Delete(key);
    }

    /// <summary>The ring buffer the program's `log` statements write to, if it has any.</summary>
    public BpfMap? LogEvents => _maps.GetValueOrDefault(CompiledProgram.LogEventsMap);

    /// <summary>The entries a set map holds now (null for other maps or an unknown name).</summary>
    public IReadOnlyDictionary<byte[], byte[]>? Entries(string map) => _entries.GetValueOrDefault(map);

    /// <summary>Applies changes to this program's set maps, atomically for packets (<see cref="SetBatch"/>); throws the first failure.</summary>
    public void UpdateMap(string map, IReadOnlyList<(byte[] Key, byte[] Value)> upserts, IReadOnlyList<byte[]> deletes)
    {
        var outcome = SetBatch.Apply([new SetBatch.Change(this, map, deletes, upserts)]);
        if (outcome.First is { } e) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
    }

    /// <summary>Writes a change to one copy of a set map (rewriting it first if it is stale); marks it stale when that fails.</summary>
    internal void WriteCopy(int copy, string map, IReadOnlyList<(byte[] Key, byte[] Value)> upserts, IReadOnlyList<byte[]> deletes)
    {
        var copies = _sets[map];
        var m = copies.Copies[copy];
        try
        {
            // a copy the program writes holds packet-path elements the record lacks: the other copy has them
            if (IsStale(map, copy)) Rewrite(m, copies.PacketWritten ? Snapshot(copies.Copies[1 - copy]) : _entries[map]);
            if (copies.PacketWritten) copies.Stale.Remove(copy);
            else _stale.Remove((map, copy));
            // many upserts (a classifier's vectors: tens of thousands per appended rule, issue 12) in one BPF_MAP_UPDATE_BATCH
            // where the map type has it: the same writes in the same order, one syscall; a failure midway leaves the
            // entries before it written, as one by one, and the copy stale. A copy the program writes keeps one update per
            // key (the control plane's writes of it are counted per key: SharedPacketPathSetTests).
            if (upserts.Count > 1 && !copies.PacketWritten) m.UpdateMany(upserts);
            else foreach (var (k, v) in upserts) m.Update(k, v);
            foreach (var k in deletes) Remove(m, k);
        }
        catch
        {
            MarkStale(map, copy);
            throw;
        }
    }

    /// <summary>
    /// After a change was written to the standby copy of a packet-written set while packets already read it in the
    /// live copy (a batch's second write, after the switch, or a one-key change's): the standby follows what packets
    /// did meanwhile, as their own writes of the other copy do (ProgramCompiler.ElementDelete.cs). An upserted key the
    /// live copy no longer holds, or holds claimed by a `delete @s`, was deleted by a packet after the change: taken
    /// back from the standby. A deleted key the live copy holds again was added by a packet: its value written to the
    /// standby, and taken back should a delete claim or take it meanwhile. Without this the standby kept the change over
    /// the packet's write and the next switch showed the element appearing or vanishing.
    /// </summary>
    internal void FollowLive(string map, IReadOnlyList<(byte[] Key, byte[] Value)> upserts, IReadOnlyList<byte[]> deletes)
    {
        if (!_sets.TryGetValue(map, out var copies) || !copies.PacketWritten) return;
        var (live, standby) = (copies.Copies[Generation], copies.Copies[Standby]);
        var value = new byte[live.ValueSize];
        bool Live(byte[] key) => live.TryLookup(key, value)
            && (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(value) & SetLayout.DeleteClaim) == 0;
        foreach (var (k, _) in upserts)
            if (!Live(k)) standby.Delete(k);
        foreach (var k in deletes)
        {
            if (!Live(k)) continue;
            standby.Update(k, value);
            if (!Live(k)) standby.Delete(k);
        }
    }

    /// <summary>Notes that a copy may not hold what <see cref="Entries"/> says: it is rewritten before its next write.</summary>
    internal void MarkStale(string map, int copy)
    {
        // shared copies of a packet-written set are stale for every holder (any of them rewrites it before its next use)
        if (_sets.TryGetValue(map, out var c) && c.PacketWritten) c.Stale.Add(copy);
        else _stale.Add((map, copy));
    }

    bool IsStale(string map, int copy) =>
        _sets.TryGetValue(map, out var c) && c.PacketWritten ? c.Stale.Contains(copy) : _stale.Contains((map, copy));

    /// <param name="skipZero">Leave out zero values (an array's slots nothing was written to).</param>
    static Dictionary<byte[], byte[]> Snapshot(BpfMap copy, bool skipZero = false)
    {
        var d = new Dictionary<byte[], byte[]>(ByteArrayComparer.Instance);
        var value = new byte[copy.ValueSize];
        foreach (var k in copy.Keys())
            if (copy.TryLookup(k, value) && !(skipZero && !value.AsSpan().ContainsAnyExcept((byte)0))) d[k] = value.ToArray();
        return d;
    }

    /// <summary>Makes a copy hold exactly <paramref name="entries"/>.</summary>
    static void Rewrite(BpfMap copy, IReadOnlyDictionary<byte[], byte[]> entries)
    {
        foreach (var k in copy.Keys().Where(k => !entries.ContainsKey(k)).ToList()) Remove(copy, k);
        foreach (var (k, v) in entries) copy.Update(k, v);
    }

    /// <summary>Takes a key out of a copy; an array's (a classifier table's) slot cannot be deleted: it becomes zero, as it was created.</summary>
    static void Remove(BpfMap copy, byte[] key)
    {
        if (copy.Type == BpfMapType.Array) copy.Update(key, new byte[copy.ValueSize]);
        else copy.Delete(key);
    }

    /// <summary>The copy packets read now of a double-buffered map (a set map or a classifier table), by map name.</summary>
    internal BpfMap? CurrentCopy(string map) => _sets.TryGetValue(map, out var c) ? c.Copies[Generation] : null;

    /// <summary>Copy <paramref name="copy"/> (0 or 1) of a double-buffered map: what tests read back from the kernel.</summary>
    internal BpfMap? Copy(string map, int copy) => _sets.TryGetValue(map, out var c) ? c.Copies[copy] : null;

    /// <summary>The copy packets do not read now.</summary>
    internal int Standby => 1 - Generation;

    /// <summary>
    /// Makes packets that start from now on read the other copy of every set map (one array update). Stale
    /// standby copies of maps the batch did not touch are rewritten first: packets are about to read them.
    /// </summary>
    internal void SwitchGeneration()
    {
        foreach (var map in _sets.Keys.Where(m => IsStale(m, Standby)).ToList()) WriteCopy(Standby, map, [], []);
        WriteGeneration(_maps[CompiledProgram.GenerationMap], Standby);
        Generation = Standby;
    }

    /// <summary>Waits until no program that started before still runs (false when this program has no set map to do it with).</summary>
    internal bool WaitForReaders()
    {
        if (_sets.Values.FirstOrDefault() is not { } c) return false;
        c.WaitForReaders(Standby);
        return true;
    }

    /// <summary>Records what a set map holds after a change.</summary>
    internal void Record(string map, IReadOnlyList<(byte[] Key, byte[] Value)> upserts, IReadOnlyList<byte[]> deletes)
    {
        var d = _entries[map];
        foreach (var (k, v) in upserts) d[k] = v;
        foreach (var k in deletes) d.Remove(k);
    }

    /// <summary>The map entries an element of a set becomes in this program; null if the program does not use the set.</summary>
    internal List<(byte[] Key, byte[] Value)>? EntriesOf(string set, Ir.SetElement element) =>
        Compiled.SetLayouts.TryGetValue(set, out var layout) ? layout.EntriesOf(element) : null;

    /// <summary>Adds an element to a set this program uses: map updates only. False if the program does not use the set.</summary>
    public bool AddElement(string set, Ir.SetElement element)
    {
        if (EntriesOf(set, element) is not { } entries || SetMap(set) is null) return false;
        UpdateMap(ProgramCompiler.SetMapName(set), entries, []);
        return true;
    }

    /// <summary>Removes an element from a set this program uses. False if the program does not use the set.</summary>
    public bool RemoveElement(string set, Ir.SetElement element)
    {
        if (EntriesOf(set, element) is not { } entries || SetMap(set) is null) return false;
        UpdateMap(ProgramCompiler.SetMapName(set), [], entries.Select(e => e.Key).ToList());
        return true;
    }

    public TestRunResult TestRun(ReadOnlySpan<byte> packet, int repeat = 1, ReadOnlySpan<byte> ctx = default) =>
        Program.TestRun(packet, repeat, ctx);

    public void Dispose()
    {
        Program.Dispose();
        _tail?.Dispose();
        foreach (var p in Segments) p.Dispose();
        foreach (var (name, m) in _maps) if (!_borrowed.Contains(name) && !IsSetMap(name)) m.Dispose();
        foreach (var c in _sets.Values) c.Release(this);
        _ownQuotas?.Dispose();
        _ownLimits?.Dispose();
    }

    /// <summary>Whether a map name is a set's outer map, one of its copies or its bucket map (owned through <see cref="SetCopies"/>).</summary>
    bool IsSetMap(string name) => _sets.ContainsKey(name) || (name.EndsWith("@0") || name.EndsWith("@1") || name.EndsWith("@b")) && _sets.ContainsKey(name[..^2]);
}
