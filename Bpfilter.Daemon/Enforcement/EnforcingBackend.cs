using System.Diagnostics;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Daemon.Placement;
using Nft.Engine;
using Nft.Kernel;
using Nft.Lifter;
using Nft.Netlink;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Enforces committed rulesets: lifts the proposed ruleset chain by chain (Nft.Lifter), places every
/// base chain (<see cref="PlacementPlan"/>: BPF when it lifted, else the kernel's own nf_tables at the
/// same hook and priority), stages the BPF side in the backend's <see cref="Enforcer"/> and writes the
/// kernel side through <see cref="KernelPlacement"/>. An element-only batch for sets only BPF holds
/// lifts nothing: its deltas become map updates. Counters are read from BPF maps or the kernel,
/// whichever side runs the rule (both for a regular chain reached from both).
/// <para>
/// One transaction across both sides, in this order, so that nothing is applied unless everything
/// can be: kernel validation (nothing applied), BPF load, verification and attachment of new links
/// with programs that change nothing, kernel commit, and in <see cref="Commit"/> the BPF swap, which
/// cannot fail short of a kernel surprise. A failure before the kernel commit leaves both sides as they
/// were; <see cref="Abort"/> after it puts the kernel's previous tables back (RollbackLastCommit).
/// </para>
/// </summary>
public sealed partial class EnforcingBackend : IRulesetBackend, IDisposable
{
    /// <summary>Rounds of moving chains BPF failed to stage to the kernel before giving up.</summary>
    const int MaxFallbacks = 8;

    readonly object _gate = new();
    readonly Action<string> _log;
    readonly CounterSlots _slots = new();
    /// <summary>Rules the last lift lifted, reused by the next when unchanged: a commit of one more rule lifts one rule.</summary>
    readonly RuleLiftCache _lifts = new();
    /// <summary>Each chain's placement facts, folded further when the chain only grew: a commit of one more rule walks one rule.</summary>
    readonly PlacementFacts _placementFacts = new();
    readonly Enforcer _enforcer = new();
    readonly KernelPlacement? _kernel;
    readonly KernelCounterView? _kernelCounters;
    readonly Func<string, Exception?> _fault;
    readonly LogSinks _logs;
    readonly ConntrackReference _conntrack;
    /// <summary>Whether each BPF chain reads ct, kept so that an append folds the new rules alone.</summary>
    readonly ChainFolds<CtReads> _ctReads = new();
    LiftResult? _current;
    PlacementPlan? _plan;
    Staged? _staged;
    /// <summary>The limits in the kernel that BPF moved there with a bucket it had not full (<see cref="LimitMoves"/>); the staged commit's come in its <see cref="KernelPrepared"/>.</summary>
    /// <summary>When the kernel copy's limits were last reached, across commits (<see cref="KernelLimitIdle"/>).</summary>
    readonly KernelLimitIdle _limitIdle = new();
    /// <summary>The boot <see cref="_limitIdle"/>'s times count from, kept with them in the state file.</summary>
    static readonly string BootId = KernelLimitIdle.BootId();
    Dictionary<StatefulKey, string> _limitNotes = [];
    /// <summary>The named counters and quotas neither side holds, with their counts.</summary>
    readonly UnplacedObjects _unplaced = new();

    /// <summary>What Prepare staged: the lift and placement it came from, element-only stats, whether the kernel side already committed.</summary>
    /// <param name="Seeds">counters BPF takes over from the kernel (<see cref="CounterCarry.ToBpf"/>), given to the ledger on commit</param>
    /// <param name="Renewal">what the transaction renewed, whose kernel reset baselines and quota start points go at the commit</param>
    /// <param name="Kernel">what the kernel preparation handed the kernel besides its tables (quota start points, BPF's part of counters), kept at the commit</param>
    /// <param name="Unplaced">the named counters and quotas unplaced after the commit, and those that leave BPF to be</param>
    /// <param name="HeldForLimits">the chains the placement keeps in the kernel for limits whose bucket there is not known full, with those limits</param>
    /// <param name="KeptLimits">the named limits BPF keeps while no rule names them (<see cref="BpfKeptLimits"/>), with their slots</param>
    sealed record Staged(LiftResult Lift, PlacementPlan Plan, PrepareStats? Elements, long Ticks, bool KernelCommitted,
        IReadOnlyList<CounterSeed>? Seeds = null, IReadOnlyList<QuotaSeed>? QuotaSeeds = null, KernelRenewal? Renewal = null,
        KernelPrepared? Kernel = null, UnplacedMove? Unplaced = null, IReadOnlyDictionary<ChainId, IReadOnlyList<StatefulKey>>? HeldForLimits = null,
        IReadOnlyDictionary<StatefulKey, ulong>? KeptLimits = null);

    /// <summary>The committed named limits BPF keeps while no rule names them, with their slots (<see cref="BpfKeptLimits"/>).</summary>
    IReadOnlyDictionary<StatefulKey, ulong> _keptLimits = new Dictionary<StatefulKey, ulong>();

    /// <summary>The limit keys whose slots the committed ruleset holds: those rules name and those BPF keeps unnamed.</summary>
    IEnumerable<StatefulKey> CommittedLimits => (_current?.Limits.Keys ?? []).Concat(_keptLimits.Keys);

    /// <param name="kernel">
    /// Where chains BPF cannot run go; null for --placement bpf-only, which refuses such chains naming the rule.
    /// </param>
    /// <param name="fault">Test seam: an exception to raise at a named stage of Prepare ("kernel-commit", "bpf-prepare").</param>
    public EnforcingBackend(KernelPlacement? kernel, Action<string>? log = null, Func<string, Exception?>? fault = null)
    {
        _kernel = kernel;
        _kernelCounters = kernel != null ? new KernelCounterView(kernel) : null;
        _log = log ?? (_ => { });
        _fault = fault ?? (_ => null);
        _logs = new LogSinks(_log);
        _conntrack = new ConntrackReference(kernel?.Socket, _log);
        _gc = new Timer(_ => CollectExpired(), null, GcInterval, GcInterval);
    }

    /// <summary>How often expired packet-path elements are collected (the kernel's set GC runs periodically too; a set's `gc-interval` is not read).</summary>
    static readonly TimeSpan GcInterval = TimeSpan.FromSeconds(1);
    readonly Timer _gc;

    /// <summary>Takes expired elements out of the sets BPF programs write from the packet path, as the kernel's set GC does.</summary>
    void CollectExpired()
    {
        lock (_gate)
        {
            try
            {
                foreach (var p in _enforcer.LivePrograms) p.CollectExpired();
            }
            catch (Exception e) when (e is BpfException or ObjectDisposedException or InvalidOperationException)
            {
                _log($"collecting expired elements of packet-written sets failed: {e.Message}");
            }
        }
    }

    public bool BpfOnly => _kernel == null;

    /// <summary>Appends after a classified chain load as a tail program (<see cref="Enforcer.ChainTails"/>; off: bpfilterd --no-chain-tails).</summary>
    public bool ChainTails
    {
        get => _enforcer.ChainTails;
        set => _enforcer.ChainTails = value;
    }

    /// <summary>
    /// Keeps every attach point pinned under <paramref name="dir"/> after each commit, so filtering outlives
    /// this process (an exit closes fds and detaches nothing pinned); a commit that removes a chain unpins it.
    /// </summary>
    public void PinUnder(string dir)
    {
        lock (_gate) _enforcer.PinRoot = dir;
    }

    bool _adopt, _adoptKernel;

    /// <summary>
    /// The next Prepare takes over what an earlier daemon left enforcing instead of replacing it: attach
    /// points pinned under the pin directory (their links, and their programs when the pinned one is exactly
    /// what the new ruleset compiles to and is what runs), and with <paramref name="kernelTables"/> (a
    /// restored state) the kernel's tables that hold what the ruleset places there. Without (no state to
    /// restore), every table the kernel holds keeps running until that commit, which deletes or replaces it
    /// in its own kernel transaction. Pinned attach points the commit does not adopt are unpinned after it.
    /// Returns the number of kernel tables kept running meanwhile.
    /// </summary>
    public int AdoptOnNextPrepare(bool kernelTables)
    {
        lock (_gate)
        {
            _adopt = true;
            _adoptKernel = kernelTables;
            return kernelTables ? 0 : _kernel?.Adopt([]).Stale ?? 0;
        }
    }

    public void BeginRequest()
    {
        lock (_gate) _kernelCounters?.BeginRequest();
    }

    public void Prepare(RulesetChange change)
    {
        lock (_gate)
        {
            Release();
            _kernelListings.Clear();
            var clock = Stopwatch.StartNew();
            if (change.ElementsOnly && _current != null && _plan != null
                && !change.SetDeltas.Any(d => _plan.KernelSets.Contains((d.Family, d.Table, d.Set)))
                && ElementChanges.Of(_current, change.SetDeltas) is { } changes
                && _enforcer.PrepareElements(changes) is { } stats)
            {
                _staged = new Staged(_current, _plan, stats, clock.ElapsedTicks, false);
                _log($"prepared {stats} (elements only: lifted nothing, no program loaded)");
                return;
            }
            try
            {
                var sources = Sources(change);
                if (sources.FirstOrDefault(t => ConntrackReference.IsReserved(t.Family, t.Name)) is { } reserved)
                    throw new BackendRefusal(Errno.EOPNOTSUPP, $"table inet {reserved.Name} is reserved: bpfilterd switches conntrack on with it",
                        reserved.Family, reserved.Name, reason: RefusalReason.ReservedTable);
                var lift = NftLifter.LiftChains(sources, _slots, _lifts);
                var renewal = KernelRenewals.Of(change);
                var lifted = clock.ElapsedMilliseconds;
                var heldForLimits = new Dictionary<ChainId, IReadOnlyList<StatefulKey>>();
                var keptLimits = BpfKeptLimits.Of(sources, lift, change, _slots.Limits);
                var (plan, staged, kernelSide) = Stage(sources, lift, ElementChanges.ByIrSet(lift, change.SetDeltas), change.SetDeltas,
                    ElementChanges.Recreated(lift, change.RecreatedSets), Renewal.Of(lift, change), change.RecreatedTables, renewal, heldForLimits,
                    keptLimits);
                // what the kernel counted for counters BPF takes over: read while the kernel still holds them
                var seeds = KernelCountsToBpf(sources, lift, plan, renewal);
                var quotaSeeds = KernelQuotasToBpf(sources, lift, plan, renewal);
                var unplaced = Unplace(sources, lift, plan, renewal);
                var elementSeeds = KernelElementsToBpf(sources, lift, plan, change.RecreatedTables, change.SetDeltas);
                _enforcer.SeedPacketPath(KernelWrittenToBpf(sources, lift, plan, change.RecreatedTables, change.SetDeltas));
                _kernelListings.Clear();
                bool kernelCommitted = false;
                // objects no side held that a chain names again start from what was kept of them
                seeds = [.. seeds, .. unplaced.CounterSeeds];
                IReadOnlyList<QuotaSeed> quotas = [.. quotaSeeds, .. elementSeeds.Quotas, .. unplaced.QuotaSeeds];
                if (_kernel != null && _kernel.HasPending)
                {
                    var early = false;
                    try
                    {
                        // the chains taken back from the kernel filter from now on, beside the kernel's copies: their
                        // quotas spend from the kernel's `used`, their counters count on from the kernel's count
                        var errors = new List<string>();
                        var installed = _enforcer.InstallEarly(errors, () =>
                        {
                            early = true;
                            foreach (var q in quotas) _enforcer.SeedQuotaEarly(q.Slot, q.Used, q.Start);
                        });
                        if (early)
                        {
                            (seeds, quotas) = (OverlapSeeds(sources, seeds), []);
                            // what the kernel's packet path added to the sets it hands over since they were read: the
                            // last read before its commit deletes them
                            var merged = _enforcer.CatchUpEarly(KernelWrittenToBpf(sources, lift, plan, change.RecreatedTables, change.SetDeltas), errors);
                            _kernelListings.Clear();
                            _log($"early install: {installed.Count} program(s) run beside the kernel's copies; {merged} element(s) the kernel's packet path added since its sets were read merged in");
                        }
                        foreach (var error in errors) _log(error);
                        if (_fault("kernel-commit") is { } injected) throw injected;
                        _kernel.Commit();
                        kernelCommitted = true;
                        (seeds, quotas) = Finals(sources, kernelSide.Lingering, seeds, quotaSeeds, quotas, early);
                        // what BPF counted between reading its counts for the kernel and the kernel applying the batch
                        if (kernelSide.Sent.Count > 0)
                            kernelSide = kernelSide with { Carried = [.. kernelSide.Carried, .. SentRemainder(kernelSide.Sent)] };
                    }
                    catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException or InvalidOperationException)
                    {
                        _kernel.Abort();
                        // the kernel keeps its chains, alone from now on; what the early programs dropped before its copy
                        // saw it is carried there
                        if (early)
                        {
                            _enforcer.WithdrawEarly();
                            CarryEarlyDrops(sources, seeds);
                        }
                        throw KernelRefusal(e, "committing");
                    }
                }
                _staged = new Staged(lift, plan, null, 0, kernelCommitted, [.. seeds, .. elementSeeds.Counters], quotas, renewal,
                    kernelSide, unplaced, heldForLimits, keptLimits.ToDictionary(k => k.Key, k => k.Value.StateSlot));
                var kernelChains = plan.InKernel.Count();
                _log($"prepared {staged}{(change.ElementsOnly ? " (elements only)" : "")}; {plan.Chains.Count - kernelChains} base chain(s) in BPF " +
                    $"({plan.BpfRuleCount(sources)} rules), {kernelChains} in the kernel's nf_tables ({plan.KernelRuleCount(sources)} rules); " +
                    $"lift {lifted} ms ({_lifts.Hits} rule(s) reused{(_lifts.Appended > 0 ? $", {_lifts.Appended} appended onto the last lift" : "")}), total {clock.ElapsedMilliseconds} ms");
                foreach (var p in plan.InKernel) _log($"placement: {p}");
            }
            catch (Exception e)
            {
                _kernelListings.Clear();
                _enforcer.Abort();
                _kernel?.Abort();
                _slots.Retain(_current?.Counters.Keys ?? []);
                _slots.Quotas.Retain(_current?.Quotas.Keys ?? []);
                _slots.Limits.Retain(CommittedLimits);
                SwitchConntrackOffIfUnused();
                // nft 1.0.6 prints strerror, not the extack text: the daemon log is where an operator reads why.
                if (e is BackendRefusal r)
                {
                    _log($"transaction refused (errno {r.Errno}): {r.ExtAck}");
                    throw;
                }
                _log($"transaction refused: {e}");
                throw new BackendRefusal(Errno.EOPNOTSUPP, $"bpfilter-nft: {e.Message}", reason: RefusalReason.Internal);
            }
        }
    }

    static IReadOnlyList<SourceTable> Sources(RulesetChange change)
    {
        try
        {
            return change.Tables;
        }
        catch (NetlinkException e)
        {
            throw new BackendRefusal(e.Errno, $"bpfilter-nft cannot read the ruleset back: {e.ExtAck}", reason: RefusalReason.Internal);
        }
    }

    /// <summary>
    /// Places the chains, has the kernel validate its side, then stages the BPF side. A chain BPF cannot
    /// load or attach moves to the kernel and both sides are staged again (bpf-only: refused). Also gives what the last
    /// round's kernel preparation hands the kernel (<see cref="KernelPrepared"/>): an earlier round's is staged no more.
    /// <paramref name="heldForLimits"/> gets the chains kept in the kernel for limits whose bucket there is not known full.
    /// </summary>
    (PlacementPlan, PrepareStats, KernelPrepared) Stage(IReadOnlyList<SourceTable> sources, LiftResult lift, IReadOnlyDictionary<string, SetChange> packetPath,
        IReadOnlyList<SetDelta> deltas, IReadOnlySet<string> recreated, RenewedSlots renewed, IReadOnlyList<(byte, string)> recreatedTables,
        KernelRenewal kernelRenewal, Dictionary<ChainId, IReadOnlyList<StatefulKey>> heldForLimits, Dictionary<StatefulKey, LimitStatement> keptLimits)
    {
        foreach (var c in lift.Chains)
            if (c is ChainLift.Refused r) _log($"{c.Chain} cannot be lifted: {r.Refusal.Message}");
        var forced = new HashSet<ChainId>();
        var held = new Dictionary<(byte Family, string Table, string Set), string>();
        var kept = new Dictionary<ChainId, string>();
        var idleAt = ObserveKernelLimits();
        // the limit objects the kernel's copy holds stay there while their table holds them (a new one would start full)
        var kernelLimits = KernelKeptLimits.HeldBy(_kernel?.Placed ?? []);
        IReadOnlySet<StatefulKey> earlierShared = new HashSet<StatefulKey>();
        for (int round = 0; ; round++)
        {
            var plan = PlacementPlan.Build(sources, lift, forced, _placementFacts, held, _enforcer.MovedLinks, kept, kernelLimits);
            // a set the kernel's packet path gave elements whose state BPF cannot be given stays where it is, with its chains
            if (KernelHeldSets(sources, plan, recreatedTables, deltas, held)) continue;
            // so does a chain reaching a limit whose bucket in the kernel is not known full
            if (KeptForLimits(sources, plan, lift, renewed, kept, heldForLimits, idleAt)) continue;
            var kernelSide = KernelPrepared.None;
            // its own kernel commit: before the placement reads the generation it validates and commits against
            _ctReads.Retain(plan.BpfRuleset);
            if (ConntrackReference.Needed(plan.BpfRuleset, _ctReads)) SwitchConntrackOn();
            if (_adopt)
            {
                _adopt = false;
                // the kernel's copy holds no limit object whose bucket an earlier daemon shared (its pin says so)
                Adopt(WithoutSharedObjects(plan, Sharable(plan, recreatedTables, renewed.Limits).Select(s => s.Key)));
                // a restarted daemon learns the kernel copy's limit objects only now: placed again with them, then adopted again
                if (_kernel != null && KernelKeptLimits.HeldBy(_kernel.Placed) is var adopted && !adopted.IsSubsetOf(kernelLimits))
                {
                    kernelLimits.UnionWith(adopted);
                    _adopt = true;
                    continue;
                }
            }
            // after the adoption, which reopens the limit map and the filters an earlier daemon pinned
            var shared = ShareLimits(plan, recreatedTables, renewed.Limits);
            plan = WithoutSharedObjects(plan, shared.Keys);
            if (_kernel == null)
            {
                if (plan.InKernel.FirstOrDefault() is { } k)
                {
                    var f = k.Refusal;
                    throw f != null
                        ? new BackendRefusal(Errno.EOPNOTSUPP, f.Message, f.Family, f.Table, f.Chain, f.RuleHandle, f.ExpressionIndex, RefusalReason.BpfOnly)
                        : new BackendRefusal(Errno.EOPNOTSUPP, $"{k.Chain}: {k.Reason} (--placement bpf-only)", k.Chain.Family, k.Chain.Table, k.Chain.Chain,
                            reason: RefusalReason.BpfOnly);
                }
            }
            else if (plan.KernelTables.Count > 0 || _kernel.Placed.Count > 0)
            {
                try
                {
                    kernelSide = PrepareKernel(_kernel, plan, lift, recreatedTables, deltas, kernelRenewal)
                        with { LimitNotes = UnfullLimitsToKernel(plan, renewed, shared), RenewedLimits = renewed.Limits };
                }
                catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException or ArgumentException)
                {
                    throw KernelRefusal(e, "validating");
                }
            }
            var wasKernel = _plan == null || _kernel == null ? null : _plan.InKernel.Select(c => c.Chain).ToHashSet();
            var moveBack = wasKernel == null ? null : MoveBackPriorities.Of(plan.BpfRuleset, lift, wasKernel, _enforcer.AttachPoints, _enforcer.MovedLinks);
            var takenBack = wasKernel == null ? null : TakenBack.Of(plan.BpfRuleset, lift, wasKernel);
            // after the adoption, which reopens the buckets an earlier daemon left
            BpfKeptLimits.Retain(keptLimits, _enforcer.KeepsLimitBucket, plan.KernelTables);
            earlierShared = KeepShared(keptLimits, shared, earlierShared);
            var outcome = _enforcer.Prepare(plan.BpfRuleset, packetPath, recreated, renewed, moveBack, takenBack, [.. keptLimits.Values]);
            if (_fault("bpf-prepare") is { } injected)
            {
                _enforcer.Abort();
                throw new BackendRefusal(Errno.EIO, $"bpfilter-nft: staging the BPF side failed: {injected.Message}", reason: RefusalReason.BpfLoad);
            }
            if (outcome.Failure is not { } failure) return (plan, outcome.Stats!, kernelSide);
            var refusal = Refusal(lift, failure);
            if (_kernel == null || round >= MaxFallbacks) throw refusal;
            _kernel.Abort();
            var moved = failure.Unit.Chains.Select(c => lift.Origins.GetValueOrDefault(c.Name)).OfType<ChainId>().ToList();
            if (moved.Count == 0 || !moved.Any(forced.Add)) throw refusal;
            _log($"{refusal.ExtAck}: placing {string.Join(", ", moved)} in the kernel's nf_tables instead");
        }
    }

    /// <summary>The sets the kernel's packet path writes, each with this transaction's own element changes.</summary>
    static IEnumerable<PacketPathSet> KernelPacketPath(PlacementPlan plan, IReadOnlyList<SetDelta> deltas)
    {
        var byName = deltas.ToDictionary(d => (d.Family, d.Table, d.Set));
        return plan.KernelWrittenSets.Select(w => byName.TryGetValue(w, out var d)
            ? new PacketPathSet(w.Family, w.Table, w.Set, d.Added, d.Removed)
            : new PacketPathSet(w.Family, w.Table, w.Set, [], []));
    }

    void SwitchConntrackOn()
    {
        try
        {
            _conntrack.On();
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException or InvalidOperationException)
        {
            throw new BackendRefusal(e is NetlinkException n ? n.Errno : Errno.EIO,
                $"bpfilter-nft: a BPF chain reads ct, but switching conntrack on failed: {e.Message}", reason: RefusalReason.Conntrack);
        }
    }

    /// <summary>Conntrack stays on only while the committed BPF ruleset reads it.</summary>
    void SwitchConntrackOffIfUnused()
    {
        if (_plan == null || !ConntrackReference.Needed(_plan.BpfRuleset, _ctReads)) _conntrack.Off();
    }

    void Adopt(PlacementPlan plan)
    {
        if (_kernel != null && _adoptKernel)
        {
            var (adopted, stale) = _kernel.Adopt(_kernelCounters!.QuotaStarts.Listed(plan.KernelTables));
            _log($"restart: adopted {adopted} kernel nf_tables table(s) as they run" +
                (stale > 0 ? $"; {stale} other(s) keep running until this transaction replaces or deletes them" : ""));
            // what the earlier daemon's rules did to their limits is not known: each counts as reached now
            _limitIdle.Adopted(_kernel.Placed, Environment.TickCount64);
        }
        if (_enforcer.PinRoot is { } root)
        {
            foreach (var note in _enforcer.ReopenSharedMaps(root)) _log($"restart: {note}");
            var links = _enforcer.Adopt(plan.BpfRuleset, root, out var programs);
            _log($"restart: adopted {links} pinned attach point(s) under {root}, {programs} with their running program");
        }
    }

    CounterState.Saved? _restoredCounters;

    /// <summary>Exports after every commit: the unchanged counter entries keep their bytes from the export before.</summary>
    readonly CounterStateEncoder _stateEncoder = new();

    public byte[]? ExportState()
    {
        lock (_gate)
        {
            var bpf = new List<CounterState.Bpf>(_current?.Counters.Count ?? 0);
            foreach (var (key, id) in _current?.Counters ?? new Dictionary<CounterKey, ulong>())
            {
                var (carried, zero) = _enforcer.CounterLedgerEntry(id);
                bpf.Add(new CounterState.Bpf(key, carried, zero, id));
            }
            // only the slots the data plane holds (not those of kernel-placed quotas and limits): their state is in the shared maps
            var quotas = (_current?.Quotas ?? new Dictionary<StatefulKey, ulong>())
                .Where(e => _enforcer.QuotaBase(e.Value) != null).Select(e => new CounterState.Quota(e.Key, e.Value, _enforcer.QuotaBase(e.Value)!.Value));
            // a shared limit object a lifted chain names is both (EnforcingBackend.SharedLimits)
            var limits = (_current?.Limits ?? new Dictionary<StatefulKey, ulong>()).Concat(_keptLimits).DistinctBy(e => e.Key)
                .Where(e => _enforcer.HoldsLimit(e.Value)).Select(e => new CounterState.Limit(e.Key, e.Value));
            return _stateEncoder.Encode(bpf, _kernelCounters, quotas, limits, _enforcer.CounterLayouts, _enforcer.ElementStatementLists, _unplaced.All,
                _limitIdle.Export(BootId));
        }
    }

    public void ImportState(ReadOnlySpan<byte> state)
    {
        var saved = CounterState.Decode(state);
        lock (_gate)
        {
            _restoredCounters = saved;
            _unplaced.Restore(saved.Unplaced);
            _limitIdle.Restore(saved.LimitsReached, BootId);
            // the same slot ids as before: the restored ruleset compiles to the pinned programs, which are adopted with their counts
            if (_current == null && saved.BpfCounters.All(b => b.Slot != null))
            {
                _slots.Restore(saved.BpfCounters.Select(b => (b.Key, b.Slot!.Value)));
                // quotas and limits keep their slots too: the shared maps reopened from the pins hold their state there
                _slots.Quotas.Restore(saved.Quotas.Select(q => (q.Key, q.Slot)));
                _slots.Limits.Restore(saved.Limits.Select(l => (l.Key, l.Slot)));
                _enforcer.Inherit(saved.Quotas.ToDictionary(q => q.Slot, q => q.Base), saved.Limits.Select(l => l.Slot).ToHashSet());
                _enforcer.InheritCounterLayouts(saved.Layouts);
                _enforcer.InheritElementLists(saved.ElementLists);
            }
            if (_kernelCounters != null)
            {
                foreach (var ((family, table, handle, index), v) in saved.KernelRules) _kernelCounters.RestoreRule(family, table, handle, index, v);
                foreach (var (key, v) in saved.KernelObjects) _kernelCounters.RestoreObject(key, v);
                _kernelCounters.QuotaStarts.Set(saved.KernelQuotaStarts);
                foreach (var ((family, table, handle, index), v) in saved.KernelRulesCarried) _kernelCounters.RestoreCarried(family, table, handle, index, v);
                foreach (var (key, v) in saved.KernelObjectsCarried) _kernelCounters.RestoreObjectCarried(key, v);
            }
        }
    }

    /// <summary>After the first commit of a restored ruleset: the saved ledger entries go to the slot ids this lift gave their rules.</summary>
    void ApplyRestoredCounters()
    {
        if (_restoredCounters is not { } saved || _current == null) return;
        _restoredCounters = null;
        foreach (var b in saved.BpfCounters)
            if (_current.Counters.TryGetValue(b.Key, out var id)) _enforcer.RestoreCounterLedger(id, b.Carried, b.Zero);
    }

    /// <summary>The kernel's answer as the user's error, blamed on the rule (or chain) of the message it refused.</summary>
    BackendRefusal KernelRefusal(Exception e, string what)
    {
        if (e is KernelNfTablesException k && k.Errors.Count > 0)
        {
            var err = k.Errors[0];
            var (table, chain) = err.Message?.Record switch
            {
                Nft.Bytecode.Objects.Rule r => (r.Table, r.Chain),
                Nft.Bytecode.Objects.Chain c => (c.Table, c.Name),
                Nft.Bytecode.Objects.Table t => (t.Name, null),
                _ => (null, null),
            };
            var family = err.Message?.Family ?? 0;
            return new BackendRefusal(err.Errno, $"kernel nf_tables refused {err.Description}: {err.ExtAck ?? $"errno {err.Errno}"}",
                family, table, chain, err.RuleHandle, reason: RefusalReason.KernelPlacement);
        }
        return new BackendRefusal(e is NetlinkException n ? n.Errno : Errno.EIO, $"bpfilter-nft: {what} the kernel placement failed: {e.Message}",
            reason: RefusalReason.KernelPlacement);
    }

    /// <summary>An attach point the backend cannot stage, blamed on the nf_tables chain of its first base chain.</summary>
    BackendRefusal Refusal(LiftResult lift, EnforcementFailure f)
    {
        if (f.Exception is BpfVerifierException v) _log($"verifier rejected the program for {f.Unit.Key}:\n{v.Log}");
        var first = f.Unit.Chains[0].Name;
        return lift.Origins.TryGetValue(first, out var id)
            ? new BackendRefusal(f.Errno, $"{id}: {f.Reason}", id.Family, id.Table, id.Chain, reason: RefusalReason.BpfLoad)
            : new BackendRefusal(f.Errno, $"{first}: {f.Reason}", reason: RefusalReason.BpfLoad);
    }

    /// <summary>The last commit applied element deltas only (lifted nothing): the state <see cref="ExportState"/> gives did not change.</summary>
    public bool LastCommitElementsOnly { get; private set; }

    public void Commit()
    {
        lock (_gate)
        {
            LastCommitElementsOnly = _staged?.Elements != null;
            if (_staged is not { } staged) return;
            _staged = null;
            var clock = Stopwatch.StartNew();
            // a quota's slot start point goes with the swap: what BPF consumed for those that become unplaced is read before it
            var unplacedQuotas = UnplacedObjects.QuotasFromBpf(staged.Unplaced, slot => (_enforcer.Quota(slot), _enforcer.QuotaBase(slot)));
            foreach (var error in _enforcer.Commit()) _log(error);
            _logs.Sync(_enforcer.LivePrograms);
            if (staged.Elements is { } stats)
            {
                var ms = (staged.Ticks + clock.ElapsedTicks) * 1000.0 / Stopwatch.Frequency;
                _log($"committed elements only in {ms:F3} ms: lifted nothing, no program loaded, {stats.MapUpdates} map update(s)");
                return;
            }
            // after the swap and before the slots go: the ledger holds all BPF counted for the counters that become unplaced
            if (staged.Unplaced is { } unplaced) _unplaced.Commit(unplaced, BpfCount, unplacedQuotas);
            _slots.Retain(staged.Lift.Counters);
            _slots.Quotas.Retain(staged.Lift.Quotas);
            _slots.Limits.Retain(staged.Lift.Limits.Keys.Concat(staged.KeptLimits?.Keys ?? []));
            _keptLimits = staged.KeptLimits ?? new Dictionary<StatefulKey, ulong>();
            // the filters of limits no kernel rule runs any more go (a kernel rule keeps its own program)
            _enforcer.RetainLimitMatches(_stagedShared.Values);
            _committedMatchPaths = _limitMatchPaths;
            _enforcer.RetainCounters(slot => _slots.TryGetKey(slot, out _));
            foreach (var seed in staged.Seeds ?? []) Seed(seed);
            foreach (var seed in staged.QuotaSeeds ?? []) _enforcer.SetQuota(seed.Slot, seed.Used, seed.Start);
            _current = staged.Lift;
            _plan = staged.Plan;
            var limits = staged.Kernel ?? KernelPrepared.None;
            _limitNotes = LimitMoves.Still(_limitNotes, staged.Plan.KernelTables);
            foreach (var key in _limitNotes.Keys.Where(k => staged.Lift.Limits.TryGetValue(k, out var slot) && limits.RenewedLimits.Contains(slot)).ToList())
                _limitNotes.Remove(key);
            foreach (var (key, note) in limits.LimitNotes) _limitNotes[key] = note;
            ApplyRestoredCounters();
            HoldCommitted(staged.HeldForLimits);
            if (_kernel != null)
            {
                if (staged.Renewal is { } renewal) _kernelCounters!.Forget(renewal);
                var kernelSide = staged.Kernel ?? KernelPrepared.None;
                // BPF counts them from the swap on, from their count at the kernel commit: the kernel's copies go
                if (kernelSide.Lingering.Any) DeleteLingering(kernelSide.Lingering, staged.Plan);
                _kernelCounters!.QuotaStarts.Set(kernelSide.QuotaStarts);
                _kernelCounters.Retain(_kernel.Placed);
                foreach (var (at, bpf) in kernelSide.Carried)
                    if (at.ObjectName != null) _kernelCounters.CarryObject(KernelObjectKey.Of(at), bpf);
                    else _kernelCounters.Carry(at.Family, at.Table, at.RuleHandle, at.ExpressionIndex, bpf);
                var (lift, plan) = (staged.Lift, staged.Plan);
                _kernelCounters.QuotaStarts.Retain(c => CounterSides.Quota(lift, plan, c) is { Kernel: true, Slot: null });
            }
            SwitchConntrackOffIfUnused();
        }
    }

    public void Abort()
    {
        lock (_gate)
        {
            var staged = _staged;
            Release();
            if (staged?.KernelCommitted == true) RollBackKernel();
            _slots.Retain(_current?.Counters.Keys ?? []);
            _slots.Quotas.Retain(_current?.Quotas.Keys ?? []);
            _slots.Limits.Retain(CommittedLimits);
            SwitchConntrackOffIfUnused();
        }
    }

    void RollBackKernel()
    {
        RollBackMatchPaths();
        try
        {
            _kernel!.RollbackLastCommit();
        }
        catch (Exception e)
        {
            _log($"rolling the kernel placement back failed, the kernel keeps the aborted transaction's tables: {e.Message}");
        }
    }

    void Release()
    {
        _staged = null;
        _enforcer.Abort();
        _kernel?.Abort();
    }

    /// <summary>Where the committed placement counts a counter, or nothing before the first commit.</summary>
    (ulong? Slot, bool Kernel) CommittedSides(CounterRef c) =>
        _current != null && _plan != null ? CounterSides.Of(_current, _plan, c) : (null, false);

    /// <summary>Where the committed placement counts a counter that keeps its count: not one the batch renewed (its table or the named counter).</summary>
    CounterCarry.Sides Before(KernelRenewal renewal) => Kept(c => renewal.Renews(c, Nft.Bytecode.NftObjectType.Counter), CommittedSides);

    /// <summary>Where the committed placement consumes a quota that keeps its `used`: not one the batch renewed (its table or the named quota).</summary>
    static CounterCarry.Sides QuotaBefore(KernelRenewal renewal, CounterCarry.Sides sides) => Kept(c => renewal.Renews(c, Nft.Bytecode.NftObjectType.Quota), sides);

    /// <summary><paramref name="sides"/> of a counter or quota that keeps its state: none for one the batch <paramref name="renewed"/> (its state is new).</summary>
    static CounterCarry.Sides Kept(Func<CounterRef, bool> renewed, CounterCarry.Sides sides) => c => renewed(c) ? (null, false) : sides(c);

    /// <summary>The kernel's tables to place, each counter the kernel takes over from BPF sent with BPF's count.</summary>
    /// <param name="starts">gets the start point of each quota the kernel takes over (<see cref="KernelQuotaStarts"/>)</param>
    /// <param name="carried">gets BPF's part of the rule counters both sides counted that the kernel alone counts now</param>
    IReadOnlyList<SourceTable> BpfCountsToKernel(PlacementPlan plan, LiftResult lift, KernelRenewal renewal, ICollection<QuotaStart> starts,
        ICollection<(CounterRef, CounterValue)> carried, ICollection<CounterSent> sent)
    {
        if (_current == null || _plan == null || _plan.BpfChains.Count == 0 || _kernel == null) return plan.KernelTables;
        var objects = KernelObjectKey.HeldBy(_kernel.Placed);
        bool Held(CounterRef c) => c.ObjectName != null
            ? objects.Contains(KernelObjectKey.Of(c))
            : _kernel.KernelRuleHandle(c.Family, c.Table, c.RuleHandle) != null;
        return CounterCarry.ToKernel(plan.KernelTables, Held, Before(renewal), c => CounterSides.Of(lift, plan, c), BpfCount,
            QuotaBefore(renewal, c => (BpfQuota(c), false)), c => CounterSides.Quota(lift, plan, c), slot => (_enforcer.QuotaBase(slot) ?? 0, _enforcer.Quota(slot)), starts, carried, sent);
    }

    /// <summary>
    /// <see cref="CounterCarry.Remainder"/> of the counters the kernel commit took over from BPF. BPF's program runs until
    /// the swap and sees every packet the kernel's new rule sees, so the two totals move together from the kernel commit
    /// on; the kernel's is read between two reads of BPF's (the closest pair of a few tries), whose midpoint is taken.
    /// </summary>
    List<(CounterRef, CounterValue)> SentRemainder(IReadOnlyList<CounterSent> sent)
    {
        List<(CounterRef, CounterValue)> best = [];
        ulong spread = ulong.MaxValue;
        try
        {
            for (int i = 0; i < 5 && spread > 0; i++)
            {
                var first = sent.Select(s => BpfCount(s.Slot)).ToList();
                _kernelCounters!.Invalidate();
                var kernel = sent.Select(s => KernelCount(s.At)).ToList();
                var second = sent.Select(s => BpfCount(s.Slot)).ToList();
                var gap = first.Zip(second, (a, b) => b.Packets - a.Packets).DefaultIfEmpty(0UL).Max();
                if (gap >= spread) continue;
                spread = gap;
                var mid = first.Zip(second, (a, b) => new CounterValue((a.Packets + b.Packets) / 2, (a.Bytes + b.Bytes) / 2)).ToList();
                best = CounterCarry.Remainder(sent.Select((s, j) => (s, kernel[j], mid[j])).Where(x => x.Item2 != null)
                    .Select(x => (x.s, x.Item2!.Value, x.Item3))).ToList();
            }
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException or BpfException)
        {
            // the kernel committed: a failed read loses the remainder (as before it was carried), never the transaction
            _log($"reading what BPF counted while the kernel took its counters over failed, not carried: {e.Message}");
        }
        return best;
    }

    CounterValue BpfCount(ulong slot)
    {
        var (p, b) = _enforcer.Counter(slot);
        return new CounterValue(p, b);
    }

    /// <summary>
    /// The kernel's tables as placed and as listed: quotas preset with what BPF consumed (<see cref="BpfCountsToKernel"/>)
    /// are read from the `used` they were created with (<see cref="KernelPlacement.Prepare"/>'s listed). Gives the start
    /// points of the quotas the kernel takes over and BPF's part of the counters the kernel alone counts on, which the commit keeps.
    /// </summary>
    KernelPrepared PrepareKernel(KernelPlacement kernel, PlacementPlan plan, LiftResult lift, IReadOnlyList<(byte, string)> recreated,
        IReadOnlyList<SetDelta> deltas, KernelRenewal renewal)
    {
        var starts = new List<QuotaStart>();
        var carried = new List<(CounterRef At, CounterValue Bpf)>();
        var sent = new List<CounterSent>();
        var placed = BpfElementsToKernel(BpfCountsToKernel(plan, lift, renewal, starts, carried, sent), plan, recreated, deltas);
        placed = _unplaced.ToKernel(placed, c => renewal.Renews(c, c.ObjectType), starts);
        // listed with the start points as the commit leaves them: a renewed quota counts from what the batch gave it
        var listed = _kernelCounters!.QuotaStarts.After(renewal, starts).Listed(plan.KernelTables);
        // a set the kernel gets anew goes on from each element's time left (ElementExpiry)
        placed = Bpfilter.Backend.Libbpf.KernelClock.Available
            ? ElementExpiry.TimeLeft(placed, Bpfilter.Backend.Libbpf.KernelClock.NowMs()) : ElementExpiry.None(placed);
        // the named counters and quotas BPF takes over stay in this commit, to be read once it is live (LingeringObjects)
        var lingering = Lingering(kernel, placed, plan, lift, renewal);
        kernel.Prepare(lingering.With(placed), BpfWrittenToKernel(KernelPacketPath(plan, deltas), placed, recreated),
            ReferenceEquals(placed, listed) ? null : lingering.With(listed), renewal);
        return new KernelPrepared(starts, carried, sent) { Lingering = lingering };
    }

    /// <summary>The limits BPF runs that the kernel takes over with a bucket BPF has not full (read before the commit).</summary>
    Dictionary<StatefulKey, string> UnfullLimitsToKernel(PlacementPlan plan, RenewedSlots renewed, IReadOnlyDictionary<StatefulKey, LimitStatement> shared)
    {
        if (_current == null || _kernel == null) return [];
        // a shared limit takes its bucket along
        return LimitMoves.NotFull(plan.KernelTables, _current.Limits.Where(l => !shared.ContainsKey(l.Key)).ToDictionary(), renewed.Limits,
            _kernel.Placed, _enforcer.LimitTokens);
    }

    /// <summary>Why each limit BPF moved to the kernel while its bucket was not full lets more through there (`bpfilterd explain`).</summary>
    public IReadOnlyList<string> LimitNotes()
    {
        lock (_gate) return _limitNotes.Values.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The counters BPF takes over from the kernel, with the kernel's counts (less its reset baselines).</summary>
    IReadOnlyList<CounterSeed> KernelCountsToBpf(IReadOnlyList<SourceTable> sources, LiftResult lift, PlacementPlan plan, KernelRenewal renewal)
    {
        if (_kernelCounters == null || _plan == null || _plan.KernelChains.Count == 0) return [];
        _kernelCounters.Invalidate();
        return CounterCarry.ToBpf(sources, Before(renewal), c => CounterSides.Of(lift, plan, c), KernelCount);
    }

    /// <summary>The quotas (rules' and named ones) BPF takes over from the kernel, with what the kernel consumed (less its reset baselines).</summary>
    IReadOnlyList<QuotaSeed> KernelQuotasToBpf(IReadOnlyList<SourceTable> sources, LiftResult lift, PlacementPlan plan, KernelRenewal renewal)
    {
        if (_kernelCounters == null || _current == null || _plan == null || _plan.KernelChains.Count == 0) return [];
        var (current, committed) = (_current, _plan);
        return CounterCarry.QuotasToBpf(sources, QuotaBefore(renewal, c => CounterSides.Quota(current, committed, c)),
            c => CounterSides.Quota(lift, plan, c), c => KernelCount(c)?.Bytes, c => _kernelCounters.QuotaStarts.All.TryGetValue(c, out var s) ? s : null);
    }

    /// <summary>
    /// The move of the named counters and quotas the transaction leaves on neither side or places again (<see cref="UnplacedObjects.Plan"/>),
    /// the kernel's counts read while it still holds them.
    /// </summary>
    UnplacedMove Unplace(IReadOnlyList<SourceTable> sources, LiftResult lift, PlacementPlan plan, KernelRenewal renewal)
    {
        _kernelCounters?.Invalidate();
        CounterCarry.Sides committed = _current != null && _plan != null ? CounterSides.Named(_current, _plan) : _ => (null, false);
        return _unplaced.Plan(sources, c => renewal.Renews(c, c.ObjectType), Kept(c => renewal.Renews(c, c.ObjectType), committed), CounterSides.Named(lift, plan),
            KernelCount, c => _kernelCounters?.QuotaStarts.All.TryGetValue(c, out var s) == true ? s : null);
    }

    CounterValue? KernelCount(CounterRef c) => c.ObjectName != null
        ? _kernelCounters?.Object(KernelObjectKey.Of(c))
        : _kernelCounters?.Rule(c.Family, c.Table, c.RuleHandle, c.ExpressionIndex);

    /// <summary>Has the ledger list what the kernel counted, added to what BPF counted when it counted before too.</summary>
    void Seed(CounterSeed seed)
    {
        if (seed.Early != null)
        {
            var (carried, zero) = seed.Overlapped(_enforcer.CounterLedgerEntry(seed.Slot));
            _enforcer.RestoreCounterLedger(seed.Slot, carried, zero);
            return;
        }
        var (p, b) = seed.KeepBpf ? _enforcer.Counter(seed.Slot) : default;
        _enforcer.SetCounter(seed.Slot, (p + seed.Kernel.Packets, b + seed.Kernel.Bytes));
    }

    public CounterValue? ReadCounter(CounterRef counter)
    {
        lock (_gate)
        {
            if (_plan == null) return null;
            if (_unplaced.Read(counter) is { } unplaced) return unplaced;
            if (BpfQuota(counter) is { } quota) return new CounterValue(0, _enforcer.Quota(quota));
            var (slot, kernel) = CommittedSides(counter);
            CounterValue? total = null;
            if (slot is { } id)
            {
                var (p, b) = _enforcer.Counter(id);
                total = new CounterValue(p, b);
            }
            if (kernel && KernelCount(counter) is { } k)
                total = total is { } t ? new CounterValue(t.Packets + k.Packets, t.Bytes + k.Bytes) : k;
            return total;
        }
    }

    /// <summary>
    /// A set element's counter counts in BPF when chains running in BPF read the set: then no kernel-placed
    /// chain reads it (PlacementPlan never splits a set's element counters), and the kernel's copy counts nothing.
    /// </summary>
    public CounterValue? ReadElementCounter(ElementCounterRef element)
    {
        lock (_gate)
        {
            if (_plan == null || _current == null || _plan.KernelSets.Contains((element.Family, element.Table, element.Set))) return null;
            if (!_current.Counters.TryGetValue(CounterKey.Element(element.Family, element.Table, element.Set, element.Key, element.KeyEnd), out var id))
                return null;
            var (p, b) = _enforcer.Counter(id);
            return new CounterValue(p, b);
        }
    }

    /// <summary>
    /// A set element's quota runs in BPF when chains running in BPF read the set (as its counter, see
    /// <see cref="ReadElementCounter"/>): the bytes consumed beyond the `used` it started from.
    /// </summary>
    public ulong? ReadElementQuota(ElementCounterRef element, int index)
    {
        lock (_gate)
        {
            if (_plan == null || _current == null || _plan.KernelSets.Contains((element.Family, element.Table, element.Set))) return null;
            var key = StatefulKey.Element(element.Family, element.Table, element.Set, element.Key, element.KeyEnd, index);
            if (!_current.Quotas.TryGetValue(key, out var slot) || _enforcer.QuotaBase(slot) == null) return null;
            return _enforcer.Quota(slot);
        }
    }

    public void ResetCounter(CounterRef counter)
    {
        lock (_gate)
        {
            if (_unplaced.Reset(counter)) return;
            if (BpfQuota(counter) is { } quota)
            {
                _enforcer.ResetQuota(quota);
                return;
            }
            if (counter.ObjectName == null && ResetKernelRule(counter)) return;
            if (BpfNamedCounter(counter) is { } named)
            {
                _enforcer.ResetCounter(named);
                return;
            }
            if (counter.ObjectName != null)
            {
                if (!ResetKernelQuota(counter)) _kernelCounters?.ResetObject(KernelObjectKey.Of(counter));
                return;
            }
            if (Slot(counter) is { } id) _enforcer.ResetCounter(id);
            _kernelCounters?.ResetRule(counter.Family, counter.Table, counter.RuleHandle, counter.ExpressionIndex);
        }
    }

    /// <summary>
    /// A named quota the kernel consumes is reset in the kernel's copy, not by a listing baseline: the kernel's own
    /// `nft reset quota` lets packets through again, and so must the kernel's copy (<see cref="KernelPlacement.ResetQuota"/>).
    /// Its start point is then 0, kept for the commits and restarts after (<see cref="KernelQuotaStarts"/>).
    /// </summary>
    bool ResetKernelQuota(CounterRef counter)
    {
        if (_kernel == null || _kernelCounters == null || counter.ObjectType != Nft.Bytecode.NftObjectType.Quota) return false;
        try
        {
            if (!_kernel.ResetQuota(counter.Family, counter.Table, counter.ObjectName!)) return false;
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException)
        {
            throw new BackendRefusal(e is NetlinkException n ? n.Errno : Errno.EIO,
                $"bpfilter-nft: resetting quota {counter.ObjectName} of table {counter.Table} in the kernel failed: {e.Message}", reason: RefusalReason.KernelPlacement);
        }
        _kernelCounters.QuotaStarts.Set([new QuotaStart(counter, 0)]);
        _kernelCounters.ForgetObjectBaseline(KernelObjectKey.Of(counter));
        return true;
    }

    /// <summary>
    /// A quota expression of a kernel-placed rule is reset in the kernel's copy (<see cref="KernelPlacement.ResetRule"/>),
    /// which resets the rule's counters there too: their listing baselines go, and counters the same rule reset asks
    /// for afterwards take none (<see cref="KernelCounterView.ResetInKernel"/>).
    /// </summary>
    bool ResetKernelRule(CounterRef counter)
    {
        if (_kernel == null || _kernelCounters == null || _current == null || _plan == null
            || CounterSides.Quota(_current, _plan, counter) is not { Slot: null, Kernel: true } || !IsKernelQuota(counter))
            return false;
        if (_kernelCounters.ResetInKernel(counter.Family, counter.Table, counter.RuleHandle)) return true;
        IReadOnlyList<int>? quotas;
        try
        {
            quotas = _kernel.ResetRule(counter.Family, counter.Table, counter.RuleHandle);
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException)
        {
            throw new BackendRefusal(e is NetlinkException n ? n.Errno : Errno.EIO,
                $"bpfilter-nft: resetting rule {counter.RuleHandle} of table {counter.Table} in the kernel failed: {e.Message}", reason: RefusalReason.KernelPlacement);
        }
        if (quotas == null) return false;
        _kernelCounters.QuotaStarts.Set(quotas.Select(i => new QuotaStart(counter with { ExpressionIndex = i }, 0)));
        _kernelCounters.RuleResetInKernel(counter.Family, counter.Table, counter.RuleHandle);
        return true;
    }

    /// <summary>Whether the kernel's copy of the rule holds a quota at the counter's expression index.</summary>
    bool IsKernelQuota(CounterRef c) => _kernel!.Placed.Any(t => t.Family == c.Family && t.Name == c.Table
        && t.Chains.Any(ch => ch.Rules.Any(r => r.Handle == c.RuleHandle && r.Expressions is { } e && c.ExpressionIndex < e.Count && e[c.ExpressionIndex] is Nft.Bytecode.Expressions.QuotaExpr)));

    /// <summary>
    /// The live elements of a set the packet path writes: from BPF's map when a BPF program writes it, from the
    /// kernel's set when the set is placed in the kernel and a kernel-placed chain writes it (or the kernel counts its
    /// elements); null when neither.
    /// </summary>
    public IReadOnlyList<Nft.Bytecode.Objects.SetElement>? PacketPathElements(byte family, string table, string set)
    {
        lock (_gate) return BpfWrittenElements(family, table, set) ?? KernelWrittenElements(family, table, set);
    }

    IReadOnlyList<Nft.Bytecode.Objects.SetElement>? KernelWrittenElements(byte family, string table, string set)
    {
        if (_kernel == null || _plan == null || !_plan.KernelWrittenSets.Contains((family, table, set))) return null;
        try
        {
            return _kernel.Elements(family, table, set);
        }
        catch (Exception e) when (e is KernelNfTablesException or IOException)
        {
            _log($"reading set {set} of table {table} from the kernel failed, taking the committed elements: {e.Message}");
            return null;
        }
    }

    /// <summary>
    /// The live elements of a set a BPF program writes from the packet path, from the map copy packets read now
    /// (<see cref="PacketWrittenSets.Read"/>); null when no running program writes it.
    /// </summary>
    IReadOnlyList<Nft.Bytecode.Objects.SetElement>? BpfWrittenElements(byte family, string table, string set)
    {
        if (_current == null || _plan == null || _plan.KernelSets.Contains((family, table, set))
            || !_current.SetEncoders.TryGetValue((family, table, set), out var encoder)) return null;
        return PacketWrittenSets.Read(_enforcer.LivePrograms, encoder);
    }

    /// <summary>
    /// The state slot of a quota (a rule's quota expression or a named quota) that a chain running in BPF
    /// uses. A named quota is in BPF only when no chain placed in the kernel uses it (see PlacementPlan).
    /// </summary>
    ulong? BpfQuota(CounterRef c) => _current != null && _plan != null ? CounterSides.Quota(_current, _plan, c).Slot : null;

    /// <summary>The counter slot of a named counter that chains running in BPF use (<see cref="CounterSides"/>).</summary>
    ulong? BpfNamedCounter(CounterRef c) => c.ObjectName != null ? CommittedSides(c).Slot : null;

    /// <summary>The counter slot of a rule's counter expression in BPF.</summary>
    ulong? Slot(CounterRef c)
    {
        if (c.ObjectName != null || c.Chain == null || _current == null) return null;
        return CounterSides.RuleSlot(_current, c);
    }

    /// <summary>Where each base chain of the committed ruleset runs, and why it runs in the kernel.</summary>
    public IReadOnlyList<ChainPlacement> Placements()
    {
        lock (_gate) return _plan?.Chains ?? [];
    }

    /// <summary>What is attached where, for tests and `bpfilterd explain`.</summary>
    public IReadOnlyList<AttachmentInfo> Attachments()
    {
        lock (_gate)
        {
            var moved = _enforcer.MovedLinks;
            return _enforcer.Describe().Select(a => new AttachmentInfo(a.Unit.Key, a.Unit.Hook.ToString()! + (moved.TryGetValue(a.Unit.Key, out var at)
                    ? $", link at priority {at} (moved back from the kernel's nf_tables beside its copy there, no other hook between)" : ""),
                a.Unit.Chains.Select(c => $"{c.Name} priority {c.Priority}").ToList(),
                a.LinkId, a.AttachedProgramId, a.ProgramId, a.ViaDispatcher, a.Disassembly, a.InstructionCount)).ToList();
        }
    }

    /// <summary>
    /// Per attach point, the nf_tables base chains it runs and the run statistics of the program its link runs
    /// (<see cref="Enforcer.RunStats"/>; they count only while BPF statistics are on).
    /// </summary>
    public IReadOnlyList<AttachPointRuns> RunStats()
    {
        lock (_gate)
        {
            return _enforcer.RunStats().Select(r => new AttachPointRuns(r.Unit.Key, r.Unit.Hook.ToString()!, r.LinkId,
                r.Unit.Chains.Select(c => _current?.Origins.GetValueOrDefault(c.Name)).OfType<ChainId>().ToList(), r.Stats)).ToList();
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
        _gc.Dispose();
        _holdTimer?.Dispose();
        lock (_gate)
        {
            Release();
            _logs.Dispose();
            _enforcer.Dispose();
            _conntrack.Dispose();
        }
    }
}

/// <summary>One attach point: where, which chains, link and program ids, the program's disassembly.</summary>
public sealed record AttachmentInfo(string Key, string Hook, IReadOnlyList<string> Chains, uint LinkId, uint AttachedProgramId,
    uint ProgramId, bool ViaDispatcher, string Disassembly, int InstructionCount);

/// <summary>One attach point's base chains and the run statistics of the program its link runs (null: unreadable).</summary>
public sealed record AttachPointRuns(string Key, string Hook, uint LinkId, IReadOnlyList<ChainId> Chains, BpfRunStats? Stats);
