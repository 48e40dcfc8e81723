using System.Diagnostics;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Libbpf;
using Nft.Engine;
using Nft.Engine.Model;
using Nft.Lifter;
using Nft.Netlink;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The nftables side of enforcement: lifts the proposed ruleset chain by chain (Nft.Lifter), hands
/// the IR to the backend's <see cref="Enforcer"/>, and turns refusals into nf_tables errors naming
/// the table, chain, rule and expression. An element-only batch lifts nothing: its set deltas are
/// converted with the committed lift's set encoders and staged as map updates. Counters are read by
/// nft rule through the lifter's stable counter slots.
/// </summary>
public sealed class BpfRulesetBackend : IRulesetBackend, IDisposable
{
    readonly object _gate = new();
    readonly Action<string> _log;
    readonly CounterSlots _slots = new();
    readonly Enforcer _enforcer = new();
    LiftResult? _current;
    Staged? _staged;

    /// <summary>What Prepare staged: the lift it came from, and for an element-only change its stats and time so far.</summary>
    sealed record Staged(LiftResult Lift, PrepareStats? Elements, long Ticks);

    public BpfRulesetBackend(Action<string>? log = null) => _log = log ?? (_ => { });

    public void Prepare(RulesetChange change)
    {
        lock (_gate)
        {
            Release();
            var clock = Stopwatch.StartNew();
            if (change.ElementsOnly && _current != null && ElementChanges.Of(_current, change.SetDeltas) is { } changes
                && _enforcer.PrepareElements(changes) is { } stats)
            {
                _staged = new Staged(_current, stats, clock.ElapsedTicks);
                _log($"prepared {stats} (elements only: lifted nothing, no program loaded)");
                return;
            }
            try
            {
                var lift = Lift(change);
                var lifted = clock.ElapsedMilliseconds;
                var outcome = _enforcer.Prepare(lift.Ruleset);
                if (outcome.Failure is { } f) throw Refusal(lift, f);
                _staged = new Staged(lift, null, 0);
                _log($"prepared {outcome.Stats}{(change.ElementsOnly ? " (elements only)" : "")}; lift {lifted} ms, total {clock.ElapsedMilliseconds} ms");
            }
            catch (Exception e)
            {
                _enforcer.Abort();
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

    /// <summary>Lifts every chain; the batch is refused when any chain is (kernel placement of such chains comes later).</summary>
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
        var lift = NftLifter.LiftChains(sources, _slots);
        foreach (var c in lift.Chains)
            if (c is ChainLift.Refused r) _log($"{c.Chain} cannot be lifted: {r.Refusal.Message}");
        if (lift.Refusals.Count > 0)
        {
            var first = lift.Refusals[0];
            throw new BackendRefusal(Errno.EOPNOTSUPP, first.Message, first.Family, first.Table, first.Chain, first.RuleHandle, first.ExpressionIndex);
        }
        return lift;
    }

    /// <summary>An attach point the backend cannot stage, blamed on the nf_tables chain of its first base chain.</summary>
    BackendRefusal Refusal(LiftResult lift, EnforcementFailure f)
    {
        if (f.Exception is BpfVerifierException v) _log($"verifier rejected the program for {f.Unit.Key}:\n{v.Log}");
        var first = f.Unit.Chains[0].Name;
        return lift.Origins.TryGetValue(first, out var id)
            ? new BackendRefusal(f.Errno, $"{id}: {f.Reason}", id.Family, id.Table, id.Chain)
            : new BackendRefusal(f.Errno, $"{first}: {f.Reason}");
    }

    public void Commit()
    {
        lock (_gate)
        {
            if (_staged is not { } staged) return;
            _staged = null;
            var clock = Stopwatch.StartNew();
            foreach (var error in _enforcer.Commit()) _log(error);
            if (staged.Elements is { } stats)
            {
                var ms = (staged.Ticks + clock.ElapsedTicks) * 1000.0 / Stopwatch.Frequency;
                _log($"committed elements only in {ms:F3} ms: lifted nothing, no program loaded, {stats.MapUpdates} map update(s)");
                return;
            }
            _slots.Retain(staged.Lift.Counters.Keys);
            _enforcer.RetainCounters(_slots.Slots.Values);
            _current = staged.Lift;
        }
    }

    public void Abort()
    {
        lock (_gate)
        {
            Release();
            _slots.Retain(_current?.Counters.Keys ?? []);
        }
    }

    void Release()
    {
        _staged = null;
        _enforcer.Abort();
    }

    public CounterValue? ReadCounter(CounterRef counter)
    {
        lock (_gate)
        {
            if (Slot(counter) is not { } id) return null;
            var (p, b) = _enforcer.Counter(id);
            return new CounterValue(p, b);
        }
    }

    public void ResetCounter(CounterRef counter)
    {
        lock (_gate)
        {
            if (Slot(counter) is { } id) _enforcer.ResetCounter(id);
        }
    }

    /// <summary>The counter slot of a rule's counter expression; named objects are not enforced (the lifter refuses objref).</summary>
    ulong? Slot(CounterRef c)
    {
        if (c.ObjectName != null || c.Chain == null || _current == null) return null;
        return _current.Counters.TryGetValue(new CounterKey(c.Family, c.Table, c.Chain, c.RuleHandle), out var id) ? id : null;
    }

    /// <summary>What is attached where, for tests and `bpfilterd explain`.</summary>
    public IReadOnlyList<AttachmentInfo> Attachments()
    {
        lock (_gate)
        {
            return _enforcer.Describe().Select(a => new AttachmentInfo(a.Unit.Key, a.Unit.Hook.ToString()!,
                a.Unit.Chains.Select(c => $"{c.Name} priority {c.Priority}").ToList(),
                a.LinkId, a.AttachedProgramId, a.ProgramId, a.ViaDispatcher, a.Disassembly, a.InstructionCount)).ToList();
        }
    }

    /// <summary>
    /// The lifter's listing of the committed ruleset (expressions and the matchers made of them), or
    /// null before the first commit. Set contents are those of the last lift: element-only batches since
    /// went straight to the maps.
    /// </summary>
    public string? LiftListing()
    {
        lock (_gate) return _current?.Explain();
    }

    /// <summary>Runs the program at an attach point over a packet (BPF_PROG_TEST_RUN); for tests.</summary>
    public TestRunResult? TestRun(string key, ReadOnlySpan<byte> packet, ReadOnlySpan<byte> ctx = default)
    {
        lock (_gate) return _enforcer.TestRun(key, packet, ctx);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            Release();
            _enforcer.Dispose();
        }
    }
}

/// <summary>One attach point: where, which chains, link and program ids, the program's disassembly.</summary>
public sealed record AttachmentInfo(string Key, string Hook, IReadOnlyList<string> Chains, uint LinkId, uint AttachedProgramId,
    uint ProgramId, bool ViaDispatcher, string Disassembly, int InstructionCount);
