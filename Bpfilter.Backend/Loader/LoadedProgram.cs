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
    private readonly Dictionary<string, BpfMap> _maps;
    /// <summary>Shared maps the caller lent the program: not disposed with it.</summary>
    private readonly HashSet<string> _borrowed;
    /// <summary>The quota map this program created for itself (loaded without a shared one: tests).</summary>
    private QuotaMap? _ownQuotas;
    /// <summary>The limit map this program created for itself (loaded without a shared one: tests).</summary>
    private LimitMap? _ownLimits;
    /// <summary>What each set map holds now, kept beside the map so later diffs start from the truth.</summary>
    private readonly Dictionary<string, Dictionary<byte[], byte[]>> _entries = new(StringComparer.Ordinal);

    private LoadedProgram(CompiledProgram compiled, BpfProgram program, Dictionary<string, BpfMap> maps, HashSet<string>? borrowed = null,
        QuotaMap? ownQuotas = null, LimitMap? ownLimits = null)
    {
        Compiled = compiled;
        Program = program;
        _maps = maps;
        _borrowed = borrowed ?? [];
        _ownQuotas = ownQuotas;
        _ownLimits = ownLimits;
        foreach (var spec in compiled.Maps)
        {
            if (spec.Name == CompiledProgram.CountersMap || spec.Shared) continue;
            var d = new Dictionary<byte[], byte[]>(spec.Entries.Count, ByteArrayComparer.Instance);
            foreach (var (k, v) in spec.Entries) d[k] = v;
            _entries[spec.Name] = d;
        }
    }

    public CompiledProgram Compiled { get; }
    public BpfProgram Program { get; }

    /// <param name="quotas">The quota states the program shares with others; without one (tests) it gets its own (<see cref="Quotas"/>).</param>
    /// <param name="limits">The limit buckets it shares with others; without one (tests) it gets its own (<see cref="Limits"/>).</param>
    public static LoadedProgram Load(CompiledProgram compiled, QuotaMap? quotas = null, LimitMap? limits = null)
    {
        var maps = new Dictionary<string, BpfMap>(StringComparer.Ordinal);
        var borrowed = new HashSet<string>(StringComparer.Ordinal);
        QuotaMap? own = null;
        LimitMap? ownLimits = null;
        try
        {
            foreach (var spec in compiled.Maps)
            {
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
                foreach (var (key, value) in spec.Entries) map.Update(key, value);
            }
            var raw = Linker.Link(compiled.Instructions, name => maps[name].Fd.Value);
            var program = BpfProgram.Load(compiled.ProgramType, compiled.Name, raw, compiled.AttachType);
            return new LoadedProgram(compiled, program, maps, borrowed, own, ownLimits);
        }
        catch
        {
            foreach (var (name, m) in maps) if (!borrowed.Contains(name)) m.Dispose();
            own?.Dispose();
            ownLimits?.Dispose();
            throw;
        }
    }

    /// <summary>The quota states this program uses: its own when it was loaded without shared ones, else null.</summary>
    public QuotaMap? Quotas => _ownQuotas;

    /// <summary>The limit buckets this program uses: its own when it was loaded without shared ones, else null.</summary>
    public LimitMap? Limits => _ownLimits;

    /// <summary>The quota map this program references (shared or its own), for an adopting enforcer.</summary>
    public BpfMap? QuotasMap => _maps.GetValueOrDefault(CompiledProgram.QuotasMap);

    /// <summary>
    /// Reopens a program <see cref="Pin"/> left in bpffs (by this or an earlier process), given what it was
    /// compiled from: the maps are the pinned ones (counters and set contents as they are now), nothing is
    /// loaded. Fails when a map the compiled program needs is not there or has other sizes.
    /// </summary>
    public static LoadedProgram Adopt(CompiledProgram compiled, string dir)
    {
        var maps = new Dictionary<string, BpfMap>(StringComparer.Ordinal);
        BpfProgram? program = null;
        try
        {
            foreach (var spec in compiled.Maps)
            {
                var map = BpfMap.Open(Path.Combine(dir, MapPin(spec.Name)));
                maps[spec.Name] = map;
                if (map.Type != spec.Type || map.KeySize != spec.KeySize || map.ValueSize != spec.ValueSize || map.MaxEntries != spec.MaxEntries)
                    throw new InvalidDataException($"pinned map {spec.Name} under {dir} is not the one the program was compiled with");
            }
            program = BpfProgram.Open(Path.Combine(dir, ProgramPin), compiled.ProgramType);
            return new LoadedProgram(compiled, program, maps);
        }
        catch
        {
            program?.Dispose();
            foreach (var m in maps.Values) m.Dispose();
            throw;
        }
    }

    const string ProgramPin = "prog";
    static string MapPin(string map) => "map_" + map; // bpffs refuses names with a dot

    /// <summary>Pins the program and its maps under <paramref name="dir"/> (created), for <see cref="Adopt"/>.</summary>
    public void Pin(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var (name, map) in _maps) map.Pin(Path.Combine(dir, MapPin(name)));
        Program.Pin(Path.Combine(dir, ProgramPin));
    }

    /// <summary>
    /// Names what the program does, for its pin directory: a digest of its instructions (maps by name) and
    /// map shapes, so a process that recompiles the same ruleset finds it and a different one does not.
    /// </summary>
    public static string Digest(CompiledProgram compiled)
    {
        ulong h = 14695981039346656037UL;
        void Add(string s)
        {
            foreach (char c in s)
            {
                h ^= c;
                h *= 1099511628211UL;
            }
            h ^= 0xff;
            h *= 1099511628211UL;
        }
        Add(compiled.Name);
        Add(compiled.ProgramType.ToString());
        Add(compiled.Disassembly);
        foreach (var m in compiled.Maps) Add($"{m.Name}:{m.Type}:{m.KeySize}:{m.ValueSize}:{m.MaxEntries}");
        return h.ToString("x16");
    }

    /// <summary>Packets and bytes counted for a rule counter id (summed over CPUs); zeros if the id has no slot.</summary>
    public (ulong Packets, ulong Bytes) Counter(ulong id)
    {
        if (!Compiled.CounterSlots.TryGetValue(id, out var slot)) return (0, 0);
        var sums = _maps[CompiledProgram.CountersMap].SumPerCpu((uint)slot);
        return (sums[0], sums[1]);
    }

    /// <summary>The map backing a named set (for element updates without reloading).</summary>
    public BpfMap? SetMap(string set) => _maps.GetValueOrDefault(ProgramCompiler.SetMapName(set));

    /// <summary>The ring buffer the program's `log` statements write to, if it has any.</summary>
    public BpfMap? LogEvents => _maps.GetValueOrDefault(CompiledProgram.LogEventsMap);

    /// <summary>The entries a program map holds now (null for the counters map or an unknown name).</summary>
    public IReadOnlyDictionary<byte[], byte[]>? Entries(string map) => _entries.GetValueOrDefault(map);

    /// <summary>Upserts, then deletes, in one map; the recorded contents follow.</summary>
    public void UpdateMap(string map, IEnumerable<(byte[] Key, byte[] Value)> upserts, IEnumerable<byte[]> deletes)
    {
        var m = _maps[map];
        var d = _entries[map];
        foreach (var (k, v) in upserts)
        {
            m.Update(k, v);
            d[k] = v;
        }
        foreach (var k in deletes)
        {
            m.Delete(k);
            d.Remove(k);
        }
    }

    /// <summary>The map entries an element of a set becomes in this program; null if the program does not use the set.</summary>
    internal List<(byte[] Key, byte[] Value)>? EntriesOf(string set, Ir.SetElement element) =>
        Compiled.SetLayouts.TryGetValue(set, out var layout) ? layout.EntriesOf(element).ToList() : null;

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
        UpdateMap(ProgramCompiler.SetMapName(set), [], entries.Select(e => e.Key));
        return true;
    }

    public TestRunResult TestRun(ReadOnlySpan<byte> packet, int repeat = 1, ReadOnlySpan<byte> ctx = default) =>
        Program.TestRun(packet, repeat, ctx);

    public void Dispose()
    {
        Program.Dispose();
        foreach (var (name, m) in _maps) if (!_borrowed.Contains(name)) m.Dispose();
        _ownQuotas?.Dispose();
        _ownLimits?.Dispose();
    }
}
