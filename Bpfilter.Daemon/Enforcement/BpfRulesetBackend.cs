using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Nft.Engine;
using Nft.Engine.Model;
using Nft.Lifter;
using Nft.Netlink;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Enforces committed rulesets with BPF. Prepare does everything that can fail: lift every table,
/// compile each attach point, load the programs with their maps (or, when only set contents changed,
/// work out the in-place map updates), and create the links of new attach points with a program that
/// changes nothing. Commit then only swaps programs in (bpf_link_update, or a prog-array slot behind a
/// netfilter dispatcher) and detaches attach points that lost their chains. Abort frees what Prepare
/// made; the running programs were never touched.
/// </summary>
public sealed class BpfRulesetBackend : IRulesetBackend, IDisposable
{
    readonly object _gate = new();
    readonly Action<string> _log;
    readonly CounterSlots _slots = new();
    readonly Dictionary<string, Attachment> _live = new(StringComparer.Ordinal);
    readonly CounterLedger _ledger = new();
    LiftResult? _current;
    Staged? _staged;

    public BpfRulesetBackend(Action<string>? log = null) => _log = log ?? (_ => { });

    sealed record Step(AttachUnit Unit, Attachment? Existing, Attachment? Created, CompiledProgram Compiled, LoadedProgram? Loaded, MapDiff? Diff);

    sealed record Staged(LiftResult Lift, List<Step> Steps, List<Attachment> Detach);

    public void Prepare(RulesetChange change)
    {
        lock (_gate)
        {
            ReleaseStaged();
            var steps = new List<Step>();
            try
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var lift = Lift(change);
                var lifted = clock.ElapsedMilliseconds;
                var units = AttachUnit.Group(lift.Ruleset);
                foreach (var unit in units) steps.Add(Stage(lift, unit));
                var keep = units.Select(u => u.Key).ToHashSet();
                var detach = _live.Values.Where(a => !keep.Contains(a.Key)).ToList();
                _staged = new Staged(lift, steps, detach);
                _log($"prepared {steps.Count} attach point(s): {steps.Count(s => s.Loaded != null)} program(s) loaded, " +
                     $"{steps.Count(s => s.Diff != null)} kept with {steps.Sum(s => s.Diff?.Count ?? 0)} map update(s), {detach.Count} to detach" +
                     $"{(change.ElementsOnly ? " (elements only)" : "")}; lift {lifted} ms, total {clock.ElapsedMilliseconds} ms");
            }
            catch (Exception e)
            {
                foreach (var s in steps) Release(s);
                _slots.Retain(_current?.Counters.Keys ?? []);
                // nft 1.0.6 prints strerror, not the extack text: the daemon log is where an operator reads why.
                if (e is BackendRefusal r)
                {
                    _log($"transaction refused (errno {r.Errno}): {r.ExtAck}");
                    throw;
                }
                _log($"transaction refused: {e}");
                throw new BackendRefusal(Errno.EOPNOTSUPP, $"bpfilter-nft: {e.Message}");
            }
        }
    }

    LiftResult Lift(RulesetChange change)
    {
        IReadOnlyList<SourceTable> sources;
        try
        {
            sources = change.Tables;
        }
        catch (NetlinkException e)
        {
            throw new BackendRefusal(e.Errno, $"bpfilter-nft cannot read the ruleset back: {e.ExtAck}");
        }
        try
        {
            return NftLifter.Lift(sources, _slots);
        }
        catch (LiftException e)
        {
            throw new BackendRefusal(e.Errno, e.ExtAck ?? e.Reason, e.Family, e.Table, e.Chain, e.RuleHandle, e.ExpressionIndex);
        }
    }

    /// <summary>Compiles one attach point and stages its program: reuse with map updates, or a fresh load.</summary>
    Step Stage(LiftResult lift, AttachUnit unit)
    {
        var first = unit.Chains[0];
        BackendRefusal Refuse(int errno, string why) =>
            Origin(lift, first.Name) is var (f, t, c) ? new BackendRefusal(errno, $"table {FamilyNames.Of(f)} {t} chain {c}: {why}", f, t, c)
                                                      : new BackendRefusal(errno, $"{first.Name}: {why}");
        CompiledProgram compiled;
        try
        {
            compiled = ProgramCompiler.Compile(lift.Ruleset, unit.Chains, unit.Ipv6);
        }
        catch (Exception e) when (e is CodegenException or ArgumentException or Backend.Bpf.BpfAssemblyException)
        {
            throw Refuse(Errno.EOPNOTSUPP, $"cannot be compiled to BPF: {e.Message}");
        }
        _live.TryGetValue(unit.Key, out var existing);
        if (existing?.Program is { } running && existing.Contents is { } contents && MapDiff.Between(running, contents, compiled) is { } diff)
            return new Step(unit, existing, null, compiled, null, diff);
        LoadedProgram loaded;
        try
        {
            loaded = LoadedProgram.Load(compiled);
        }
        catch (BpfVerifierException e)
        {
            _log($"verifier rejected the program for {unit.Key}:\n{e.Log}");
            throw Refuse(e.Errno, $"the BPF verifier rejected the program at {unit.Hook}: {e.Message}");
        }
        catch (BpfException e)
        {
            throw Refuse(e.Errno, $"loading the program at {unit.Hook} failed: {e.Message}");
        }
        Attachment? created = null;
        if (existing == null)
        {
            try
            {
                created = Attachment.Create(unit, compiled);
            }
            catch (BpfException e)
            {
                loaded.Dispose();
                var why = e.Errno == Errno.ENODEV && unit.Device is { } d
                    ? $"device {d} does not exist; bpfilter-nft attaches {unit.Hook} only to an existing device"
                    : $"cannot attach at {unit.Hook}: {e.Message}";
                throw Refuse(e.Errno, why);
            }
            catch
            {
                loaded.Dispose();
                throw;
            }
        }
        return new Step(unit, existing, created, compiled, loaded, null);
    }

    public void Commit()
    {
        lock (_gate)
        {
            if (_staged is not { } staged) return;
            _staged = null;
            foreach (var s in staged.Steps)
            {
                try
                {
                    if (s.Diff is { } diff)
                    {
                        diff.Apply();
                        s.Existing!.Contents = s.Compiled;
                        s.Existing.Unit = s.Unit;
                        continue;
                    }
                    var at = s.Existing ?? s.Created!;
                    at.Unit = s.Unit;
                    var old = at.Install(s.Loaded!);
                    _live[at.Key] = at;
                    if (old != null)
                    {
                        _ledger.Fold(old);
                        old.Dispose();
                    }
                }
                catch (Exception e)
                {
                    // Prepare did everything that can fail; a map or link update failing here is a kernel-side surprise.
                    _log($"commit at {s.Unit.Key} failed, the previous program keeps running there: {e.Message}");
                    if (s.Existing == null) s.Created?.Dispose();
                    else if (s.Loaded != null && !ReferenceEquals(s.Existing.Program, s.Loaded)) s.Loaded.Dispose();
                }
            }
            foreach (var a in staged.Detach)
            {
                _live.Remove(a.Key);
                if (a.Program is { } p) _ledger.Fold(p);
                a.Dispose();
            }
            _slots.Retain(staged.Lift.Counters.Keys);
            _ledger.Forget(_slots.Slots.Values);
            _current = staged.Lift;
        }
    }

    public void Abort()
    {
        lock (_gate)
        {
            ReleaseStaged();
            _slots.Retain(_current?.Counters.Keys ?? []);
        }
    }

    void ReleaseStaged()
    {
        if (_staged is not { } staged) return;
        _staged = null;
        foreach (var s in staged.Steps) Release(s);
    }

    static void Release(Step s)
    {
        s.Loaded?.Dispose();
        s.Created?.Dispose();
    }

    public CounterValue? ReadCounter(CounterRef counter)
    {
        lock (_gate)
        {
            if (Slot(counter) is not { } id) return null;
            var (p, b) = _ledger.Read(id, Running(id));
            return new CounterValue(p, b);
        }
    }

    public void ResetCounter(CounterRef counter)
    {
        lock (_gate)
        {
            if (Slot(counter) is { } id) _ledger.Reset(id, Running(id));
        }
    }

    /// <summary>The counter slot of a rule's counter expression; named objects are not enforced (the lifter refuses objref).</summary>
    ulong? Slot(CounterRef c)
    {
        if (c.ObjectName != null || c.Chain == null || _current == null) return null;
        return _current.Counters.TryGetValue(new CounterKey(c.Family, c.Table, c.Chain, c.RuleHandle), out var id) ? id : null;
    }

    (ulong Packets, ulong Bytes) Running(ulong id)
    {
        ulong p = 0, b = 0;
        foreach (var a in _live.Values)
            if (a.Program is { } prog)
            {
                var (pp, bb) = prog.Counter(id);
                p += pp;
                b += bb;
            }
        return (p, b);
    }

    /// <summary>What is attached where, for tests and `bpfilterd explain`.</summary>
    public IReadOnlyList<AttachmentInfo> Attachments()
    {
        lock (_gate)
        {
            return _live.Values.Select(a =>
            {
                var (link, attached, prog) = a.Ids();
                return new AttachmentInfo(a.Key, a.Unit.Hook.ToString()!, a.Unit.Chains.Select(c => $"{c.Name} priority {c.Priority}").ToList(),
                    link, attached, prog, a.Dispatcher != null, a.Contents?.Disassembly ?? "", a.Contents?.Instructions.Length ?? 0);
            }).ToList();
        }
    }

    /// <summary>The lifter's listing of the committed ruleset (expressions and the matchers made of them), or null before the first commit.</summary>
    public string? LiftListing()
    {
        lock (_gate) return _current?.Explain();
    }

    /// <summary>Runs the program at an attach point over a packet (BPF_PROG_TEST_RUN); for tests.</summary>
    public TestRunResult? TestRun(string key, ReadOnlySpan<byte> packet, ReadOnlySpan<byte> ctx = default)
    {
        lock (_gate) return _live.TryGetValue(key, out var a) && a.Program is { } p ? p.TestRun(packet, 1, ctx) : null;
    }

    static (byte Family, string Table, string Chain)? Origin(LiftResult lift, string irName)
    {
        foreach (var r in lift.Listing)
            if (irName == $"{FamilyNames.Of(r.Family)} {r.Table}/{r.Chain}" || irName.StartsWith($"{FamilyNames.Of(r.Family)} {r.Table}/{r.Chain}@", StringComparison.Ordinal))
                return (r.Family, r.Table, r.Chain);
        var slash = irName.IndexOf('/');
        var space = irName.IndexOf(' ');
        if (slash > space && space > 0)
        {
            byte fam = irName[..space] switch { "ip" => 2, "ip6" => 10, "inet" => 1, "netdev" => 5, "bridge" => 7, "arp" => 3, _ => 0 };
            var chain = irName[(slash + 1)..];
            var at = chain.IndexOf('@');
            return (fam, irName[(space + 1)..slash], at >= 0 ? chain[..at] : chain);
        }
        return null;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            ReleaseStaged();
            foreach (var a in _live.Values) a.Dispose();
            _live.Clear();
        }
    }
}

/// <summary>One attach point: where, which chains, link and program ids, the program's disassembly.</summary>
public sealed record AttachmentInfo(string Key, string Hook, IReadOnlyList<string> Chains, uint LinkId, uint AttachedProgramId,
    uint ProgramId, bool ViaDispatcher, string Disassembly, int InstructionCount);
