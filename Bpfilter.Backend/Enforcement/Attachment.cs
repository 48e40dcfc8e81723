using Bpfilter.Backend.Loader;
using System.Buffers.Binary;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// One attach point held by the daemon: the link, and the program that runs there now.
/// XDP and tcx links are swapped with bpf_link_update. A BPF_NETFILTER link cannot be updated, so it
/// runs a fixed dispatcher that tail-calls slot 0 of a BPF_MAP_TYPE_PROG_ARRAY: replacing that slot
/// is one atomic pointer exchange, so every packet runs either the old or the new program, never both
/// and never none. While the slot is empty the dispatcher accepts, which is what the hook did before
/// the attach point existed (it is created in Prepare, filled in Commit).
/// </summary>
internal sealed class Attachment : IDisposable
{
    const string SlotsMap = "slots";

    Attachment(AttachUnit unit, BpfLink link, BpfProgram? placeholder, BpfProgram? dispatcher, BpfMap? slots)
    {
        Unit = unit;
        Link = link;
        Placeholder = placeholder;
        Dispatcher = dispatcher;
        Slots = slots;
    }

    public AttachUnit Unit { get; set; }
    public string Key => Unit.Key;
    public BpfLink Link { get; }
    /// <summary>The accept-everything program a new XDP/tcx link starts with, until Commit installs the real one.</summary>
    BpfProgram? Placeholder { get; set; }
    public BpfProgram? Dispatcher { get; }
    public BpfMap? Slots { get; }
    public LoadedProgram? Program { get; private set; }
    bool _disposed;
    /// <summary>
    /// The priority a netfilter link runs at when not its unit's own (null: the unit's), as the kernel holds it: a link
    /// adopted from its pin after a restart keeps the one it was attached at.
    /// </summary>
    public int? LinkPriority => Unit.Hook is NetfilterHook n && BpfInfo.NetfilterPriority(Link.Fd.Value) is { } p && p != n.Priority ? p : null;
    /// <summary>What the running program was compiled from; null when unknown (element updates since, or adopted from a pin).</summary>
    public UnitSource? Source { get; set; }

    /// <summary>
    /// Creates the link for a new attach point without changing what packets see: a program that
    /// accepts everything (XDP/tcx) or the dispatcher over an empty slot (netfilter). Fails like the
    /// attach would (no such device, another XDP program there, ...).
    /// </summary>
    /// <param name="priority">
    /// For netfilter: the priority the link takes, when not the unit's own (a chain moved back from the kernel while the
    /// kernel's copy still holds its priority, see <see cref="Enforcer.Prepare"/>).
    /// </param>
    public static Attachment Create(AttachUnit unit, CompiledProgram compiled, XdpMode xdpMode = XdpMode.Auto, int? priority = null)
    {
        if (unit.Hook is NetfilterHook n)
        {
            var slots = BpfMap.Create(BpfMapType.ProgArray, "bf_slots", 4, 4, 1);
            BpfProgram? dispatcher = null;
            try
            {
                var insns = new List<Instruction>
                {
                    Asm.LoadMapFd(R2, SlotsMap), Asm.Mov64Imm(R3, 0), Asm.Call(HelperFunc.TailCall),
                    Asm.Mov64Imm(R0, compiled.AcceptCode), Asm.Exit(),
                };
                dispatcher = BpfProgram.Load(BpfProgType.Netfilter, "bf_nf_dispatch", Linker.Link(insns, _ => slots.Fd.Value), BpfAttachType.Netfilter);
                var link = BpfLink.AttachNetfilter(dispatcher, unit.ProtocolFamily, (int)n.Point, priority ?? n.Priority);
                return new Attachment(unit, link, null, dispatcher, slots);
            }
            catch
            {
                dispatcher?.Dispose();
                slots.Dispose();
                throw;
            }
        }
        var device = unit.Device ?? throw new CodegenException($"unsupported hook {unit.Hook}");
        int ifindex = BpfLink.IfIndex(device);
        var pass = BpfProgram.Load(compiled.ProgramType, "bf_pass",
            Linker.Link([Asm.Mov64Imm(R0, compiled.AcceptCode), Asm.Exit()]), compiled.AttachType);
        try
        {
            var link = unit.Hook switch
            {
                XdpIngress => BpfLink.AttachXdp(pass, ifindex, xdpMode),
                TcIngress => BpfLink.AttachTcx(pass, ifindex, ingress: true),
                _ => BpfLink.AttachTcx(pass, ifindex, ingress: false),
            };
            return new Attachment(unit, link, pass, null, null);
        }
        catch
        {
            pass.Dispose();
            throw;
        }
    }

    /// <summary>Makes <paramref name="next"/> the program packets run, atomically; returns the program it replaced.</summary>
    public LoadedProgram? Install(LoadedProgram next)
    {
        if (ReferenceEquals(next, Program)) return null; // installed early (Enforcer.InstallEarly)
        if (Slots != null)
        {
            Span<byte> key = stackalloc byte[4];
            Span<byte> value = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(value, next.Program.Fd.Value);
            Slots.Update(key, value);
        }
        else Link.Update(next.Program);
        var old = Program;
        Program = next;
        Placeholder?.Dispose();
        Placeholder = null;
        return old;
    }

    /// <summary>
    /// Closes the link of an early install (<see cref="Enforcer.InstallEarly"/>) whose transaction was aborted, keeping
    /// the program it ran (its step frees it, after what it counted is read): the hook is as it was before Prepare.
    /// </summary>
    public void Withdraw()
    {
        Program = null;
        Dispose();
    }

    /// <summary>Link id, id of the program attached to the link, id of the program that filters.</summary>
    public (uint LinkId, uint AttachedId, uint ProgramId) Ids()
    {
        var (link, attached) = BpfInfo.Link(Link.Fd.Value);
        return (link, attached, Program is { } p ? BpfInfo.ProgramId(p.Program.Fd.Value) : 0);
    }

    /// <summary>
    /// Run statistics of the program the link runs now: one this attachment holds (dispatcher, filtering program,
    /// placeholder), else (a netfilter link adopted from a pin, whose dispatcher was never reopened) opened by id.
    /// </summary>
    public BpfRunStats? RunStats()
    {
        var attached = Link.Ids.ProgramId;
        foreach (var p in (BpfProgram?[])[Dispatcher, Program?.Program, Placeholder])
            if (p != null && BpfInfo.RunStats(p.Fd.Value) is { } s && s.ProgramId == attached) return s;
        return attached == 0 ? null : BpfInfo.RunStatsById(attached);
    }

    /// <summary>File names under an attach point's pin directory.</summary>
    const string LinkPin = "link", SlotsPin = "slots";

    /// <summary>
    /// Pins the link (and, for netfilter, the slot map its dispatcher reads) under <paramref name="dir"/>,
    /// so the hook stays attached after this process closes its fds and a later one can reopen it.
    /// </summary>
    public void Pin(string dir)
    {
        Directory.CreateDirectory(dir);
        Link.Pin(Path.Combine(dir, LinkPin));
        Slots?.Pin(Path.Combine(dir, SlotsPin));
    }

    /// <summary>
    /// Reopens an attach point pinned by <see cref="Pin"/>: the link (which keeps running the program it
    /// ran) and the slot map of a netfilter dispatcher. The next <see cref="Install"/> replaces the program.
    /// </summary>
    public static Attachment Adopt(AttachUnit unit, string dir)
    {
        var link = BpfLink.Open(Path.Combine(dir, LinkPin));
        try
        {
            var slots = unit.Hook is NetfilterHook ? BpfMap.Open(Path.Combine(dir, SlotsPin)) : null;
            return new Attachment(unit, link, null, null, slots);
        }
        catch
        {
            link.Dispose();
            throw;
        }
    }

    const string ProgramDirPrefix = "prog-";
    LoadedProgram? _pinned;

    /// <summary>The directory under an attach point's pin directory that holds <paramref name="program"/> and its maps.</summary>
    public static string ProgramDir(string dir, CompiledProgram program) => Path.Combine(dir, ProgramDirPrefix + LoadedProgram.Digest(program));

    /// <summary>
    /// Keeps the pins under <paramref name="dir"/> up to date: the link and slot map (once), the running
    /// program and its maps (again when the program was replaced; the replaced one's pins go). Only files:
    /// the pins hold nothing that stays attached once the link is unpinned.
    /// </summary>
    public void PinAll(string dir)
    {
        Directory.CreateDirectory(dir);
        if (!File.Exists(Path.Combine(dir, LinkPin))) Link.Pin(Path.Combine(dir, LinkPin));
        if (Slots != null && !File.Exists(Path.Combine(dir, SlotsPin))) Slots.Pin(Path.Combine(dir, SlotsPin));
        string? keep = null;
        if (Program is { } p)
        {
            keep = ProgramDir(dir, p.Compiled);
            if (!ReferenceEquals(_pinned, p) || !File.Exists(Path.Combine(keep, "prog")))
            {
                if (Directory.Exists(keep)) Directory.Delete(keep, true);
                p.Pin(keep);
                _pinned = p;
            }
        }
        foreach (var old in Directory.EnumerateDirectories(dir, ProgramDirPrefix + "*"))
            if (old != keep) Directory.Delete(old, true);
    }

    /// <summary>
    /// Takes the program pinned under an adopted attach point's directory as the running one, when it is the
    /// one the link (or the netfilter slot) runs now; false (and nothing kept) otherwise.
    /// </summary>
    public bool AdoptProgram(LoadedProgram program, UnitSource source)
    {
        uint id = program.Program.Id, running;
        if (Slots != null)
        {
            Span<byte> key = stackalloc byte[4];
            Span<byte> value = stackalloc byte[4];
            running = Slots.TryLookup(key, value) ? BinaryPrimitives.ReadUInt32LittleEndian(value) : 0;
        }
        else running = Link.Ids.ProgramId;
        if (running != id) return false;
        Program = program;
        _pinned = program;
        Source = source;
        return true;
    }

    /// <summary>Removes the pins under <paramref name="dir"/>: once this process closes its fds, the hook is detached.</summary>
    public static void Unpin(string dir)
    {
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
    }

    /// <summary>Detaches (closing the link unregisters the hook unless it is pinned) and frees everything.</summary>
    public void Dispose()
    {
        // a withdrawn early install is disposed again by the abort that frees its step
        if (_disposed) return;
        _disposed = true;
        Link.Dispose();
        Dispatcher?.Dispose();
        Slots?.Dispose();
        Placeholder?.Dispose();
        Program?.Dispose();
    }
}
