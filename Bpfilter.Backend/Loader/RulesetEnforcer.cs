using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// Keeps a ruleset enforced in the caller's network namespace: one program per attach point (two for
/// an inet netfilter chain: IPv4 and IPv6), attached through BPF links. <see cref="Apply"/> is all or
/// nothing: every new program is compiled and loaded before anything is touched; then XDP and tcx links
/// switch with bpf_link_update, and netfilter links (which cannot be updated) run a small dispatcher
/// that tail-calls the ruleset through a one-slot program array, switched with one map update. No
/// packet ever sees half a ruleset, and if a step fails the previous programs stay in place.
/// </summary>
public sealed class RulesetEnforcer(XdpMode xdpMode = XdpMode.Auto) : IDisposable
{
    private readonly Dictionary<string, Unit> _units = new(StringComparer.Ordinal);

    private sealed class Unit(string key, Hook hook, bool ipv6) : IDisposable
    {
        public string Key { get; } = key;
        public Hook Hook { get; } = hook;
        public bool Ipv6 { get; } = ipv6;
        public LoadedProgram? Program { get; set; }
        public BpfLink? Link { get; set; }
        public BpfMap? Dispatch { get; set; }
        public BpfProgram? Dispatcher { get; set; }

        public void Dispose()
        {
            Link?.Dispose();
            Dispatcher?.Dispose();
            Dispatch?.Dispose();
            Program?.Dispose();
        }
    }

    /// <summary>Attach points currently enforced.</summary>
    public IReadOnlyCollection<string> AttachPoints => _units.Keys;

    public void Apply(Ruleset ruleset)
    {
        // 1. Compile and load everything new; nothing running changes yet.
        var fresh = new List<(string Key, Hook Hook, bool Ipv6, LoadedProgram Program)>();
        try
        {
            foreach (var group in ruleset.ByAttachPoint())
            {
                var chains = group.ToList();
                var hook = chains[0].Hook;
                var variants = hook is NetfilterHook { Family: NfFamily.Inet } ? new[] { false, true }
                    : [hook is NetfilterHook { Family: NfFamily.Ipv6 }];
                foreach (var v6 in variants)
                {
                    var key = hook is NetfilterHook ? $"{group.Key} {(v6 ? "ipv6" : "ipv4")}" : group.Key;
                    fresh.Add((key, hook, v6, LoadedProgram.Load(ProgramCompiler.Compile(ruleset, chains, v6))));
                }
            }
        }
        catch
        {
            foreach (var f in fresh) f.Program.Dispose();
            throw;
        }

        // 2. Switch attach points one by one; on failure undo what was switched.
        var switched = new List<(Unit Unit, LoadedProgram? Old, bool Created)>();
        try
        {
            foreach (var (key, hook, v6, program) in fresh)
            {
                if (_units.TryGetValue(key, out var unit))
                {
                    Switch(unit, program);
                    switched.Add((unit, unit.Program, false));
                    unit.Program = program;
                }
                else
                {
                    unit = new Unit(key, hook, v6);
                    try { Attach(unit, program); }
                    catch { unit.Program = null; unit.Dispose(); throw; }
                    unit.Program = program;
                    _units[key] = unit;
                    switched.Add((unit, null, true));
                }
            }
        }
        catch
        {
            foreach (var (unit, old, created) in switched)
            {
                if (created) { unit.Program = null; unit.Dispose(); _units.Remove(unit.Key); }
                else if (old is not null) { try { Switch(unit, old); unit.Program = old; } catch (BpfException) { } }
            }
            foreach (var f in fresh) f.Program.Dispose();
            throw;
        }

        // 3. Old programs are no longer reachable; attach points that disappeared are detached.
        foreach (var (_, old, _) in switched) old?.Dispose();
        var keep = fresh.Select(f => f.Key).ToHashSet();
        foreach (var gone in _units.Keys.Where(k => !keep.Contains(k)).ToList())
        {
            _units[gone].Dispose();
            _units.Remove(gone);
        }
    }

    /// <summary>
    /// Adds a set element in every program using the set, as map updates (no reload). Throws
    /// <see cref="CodegenException"/> when the element needs a reload (a new vmap verdict, an interval
    /// in a set compiled as a hash map); the caller then applies the updated ruleset instead.
    /// </summary>
    public void AddElement(string set, SetElement element)
    {
        // Encode for every program first, so an element that needs a reload changes nothing.
        foreach (var u in _units.Values) u.Program?.EntriesOf(set, element);
        foreach (var u in _units.Values) u.Program?.AddElement(set, element);
    }

    public void RemoveElement(string set, SetElement element)
    {
        foreach (var u in _units.Values) u.Program?.RemoveElement(set, element);
    }

    /// <summary>Sum of a counter id over every program enforcing it.</summary>
    public (ulong Packets, ulong Bytes) Counter(ulong id)
    {
        ulong p = 0, b = 0;
        foreach (var u in _units.Values)
        {
            if (u.Program is null) continue;
            var (pp, bb) = u.Program.Counter(id);
            p += pp; b += bb;
        }
        return (p, b);
    }

    private void Attach(Unit unit, LoadedProgram program)
    {
        switch (unit.Hook)
        {
            case XdpIngress x:
                unit.Link = BpfLink.AttachXdp(program.Program, BpfLink.IfIndex(x.Device), xdpMode);
                break;
            case TcIngress t:
                unit.Link = BpfLink.AttachTcx(program.Program, BpfLink.IfIndex(t.Device), ingress: true);
                break;
            case TcEgress t:
                unit.Link = BpfLink.AttachTcx(program.Program, BpfLink.IfIndex(t.Device), ingress: false);
                break;
            case NetfilterHook n:
                unit.Dispatch = BpfMap.Create(BpfMapType.ProgArray, "bf_dispatch", 4, 4, 1);
                SetSlot(unit.Dispatch, program.Program);
                var asm = new Assembler()
                    .Emit(Asm.LoadMapFd(Register.R2, "dispatch"), Asm.Mov64Imm(Register.R3, 0), Asm.Call(HelperFunc.TailCall))
                    // Only reached while the slot is empty, which Apply never leaves it.
                    .Emit(Asm.Mov64Imm(Register.R0, program.Compiled.AcceptCode), Asm.Exit());
                unit.Dispatcher = BpfProgram.Load(BpfProgType.Netfilter, "bf_nf_dispatch",
                    Linker.Link(asm.Build(), _ => unit.Dispatch.Fd.Value), BpfAttachType.Netfilter);
                unit.Link = BpfLink.AttachNetfilter(unit.Dispatcher, unit.Ipv6 ? 10 : 2, (int)n.Point, n.Priority);
                break;
            default:
                throw new CodegenException($"cannot attach at {unit.Hook}");
        }
    }

    private static void Switch(Unit unit, LoadedProgram program)
    {
        if (unit.Dispatch is not null) SetSlot(unit.Dispatch, program.Program);
        else unit.Link!.Update(program.Program);
    }

    private static void SetSlot(BpfMap dispatch, BpfProgram program) =>
        dispatch.Update(BitConverter.GetBytes(0u), BitConverter.GetBytes(program.Fd.Value));

    public void Dispose()
    {
        foreach (var u in _units.Values) u.Dispose();
        _units.Clear();
    }
}
