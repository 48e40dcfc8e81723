using System.Runtime.ExceptionServices;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Keeps a ruleset enforced in the caller's network namespace, one program per attach point
/// (<see cref="AttachUnit"/>). <see cref="Prepare"/> does everything that can fail: it compiles the
/// attach points whose source changed (<see cref="UnitSource"/>: chains, reached chains, sets), loads
/// their programs with their maps, or, when only set contents changed, works out in-place map updates;
/// new attach points get their link with a program that changes nothing. <see cref="Commit"/> then only
/// swaps programs in (bpf_link_update, or a prog-array slot behind a netfilter dispatcher), applies
/// map updates and detaches attach points that lost their chains. <see cref="Abort"/> frees what
/// Prepare made; the running programs were never touched. Attach points whose source did not change
/// keep their program (same program id) without being compiled.
/// </summary>
public sealed partial class Enforcer(XdpMode xdpMode = XdpMode.Auto) : IDisposable
{
    const int ENODEV = 19, EBUSY = 16, EOPNOTSUPP = 95;

    readonly Dictionary<string, Attachment> _live = new(StringComparer.Ordinal);
    readonly CounterLedger _ledger = new();
    /// <summary>The quota states all programs share, created when a first program needs them.</summary>
    QuotaMap? _quotas;
    /// <summary>Per quota slot of the committed ruleset, what its `used` starts from (the emulation's own count: see <see cref="Quota"/>).</summary>
    Dictionary<ulong, ulong> _quotaBase = new();
    /// <summary>The limit buckets all programs share, created when a first program needs them.</summary>
    LimitMap? _limits;
    /// <summary>Per limit slot of the committed ruleset, the limit its bucket was filled for (a changed limit object gets a new bucket).</summary>
    Dictionary<ulong, LimitStatement> _limitBuckets = new();
    Staged? _staged;
    /// <summary>Each chain's references and quota and limit statements, kept so that an append folds the new rules alone.</summary>
    readonly ChainFolds<ChainScan> _scans = new();
    /// <summary>Each base chain's trailing run, kept so that a rule appended to a grouped run is found without walking it.</summary>
    readonly ChainFolds<TrailingRun> _runs = new();

    /// <summary>
    /// Whether a change confined to a chain tail loads only the tail (<see cref="ChainTailEdit"/>); on by default (a restarted
    /// daemon adopts a program with a filled tail: <see cref="TailedProgram"/>), off (bpfilterd --no-chain-tails) such an
    /// append goes to the edits below it.
    /// </summary>
    public bool ChainTails { get; set; } = true;

    /// <summary>The per-chain folds, for tests that compare them with a walk of every rule.</summary>
    public ChainFolds<ChainScan> Scans => _scans;
    public ChainFolds<TrailingRun> Runs => _runs;

    /// <param name="Shared">For a program loaded anew, the transaction's element changes of the packet-written set maps it shares with others (they hold what the packet path added, not the compiled contents).</param>
    /// <param name="Edited">Kept with map updates worked out from the change alone (<see cref="GroupedRunEdit"/>, <see cref="ClassifiedRunEdit"/>): not compiled.</param>
    /// <param name="TailSwap">The running program's chain tail is replaced (<see cref="ChainTailEdit"/>) by <paramref name="Tail"/> (null: emptied).</param>
    sealed record Step(AttachUnit Unit, UnitSource Source, Attachment? Existing, Attachment? Created, CompiledProgram? Compiled, LoadedProgram? Loaded, MapDiff? Diff,
        MapDiff? Shared = null, bool Edited = false, bool TailSwap = false, BpfProgram? Tail = null);

    /// <summary>
    /// Per netfilter attach point a chain moved back from the kernel takes, the priorities its link may take instead of its
    /// own while the kernel's copy of the chain still holds that (EBUSY), in the order to try (<see cref="Prepare"/>).
    /// </summary>
    IReadOnlyDictionary<string, IReadOnlyList<int>> _moveBack = new Dictionary<string, IReadOnlyList<int>>();

    sealed record Staged(List<Step> Steps, List<Attachment> Detach, List<MapDiff> Elements, Dictionary<ulong, ulong>? QuotaBase = null,
        Dictionary<ulong, LimitStatement>? LimitBuckets = null, IReadOnlyDictionary<string, SetChange>? PacketPath = null)
    {
        /// <summary>The sets the transaction recreated: nothing of the replaced programs' copies of them is carried.</summary>
        public IReadOnlySet<string> Recreated { get; init; } = new HashSet<string>();
        /// <summary>The renewed counter ids (<see cref="RenewedSlots.Counters"/>: recreated sets' elements among them): they count from zero once the programs reading them are swapped.</summary>
        public IReadOnlyList<ulong> RenewedCounters { get; init; } = [];
        /// <summary>The renewed quota slots with the `used` each starts from, and the renewed limit slots with their bucket size: set at the commit.</summary>
        public IReadOnlyList<KeyValuePair<ulong, ulong>> RenewedQuotas { get; init; } = [];
        public IReadOnlyList<(ulong Slot, ulong Max)> RenewedLimits { get; init; } = [];
        /// <summary>Per IR set name, the elements another packet path added that the programs loaded anew start with (<see cref="SeedPacketPath"/>).</summary>
        public IReadOnlyDictionary<string, IReadOnlyList<PacketPathSeed>> Seeds { get; init; } = new Dictionary<string, IReadOnlyList<PacketPathSeed>>();
        /// <summary>The packet-written set copies <see cref="InstallEarly"/> seeded already: the commit does not seed them again.</summary>
        public HashSet<SetCopies> Seeded { get; } = [];
    }

    /// <summary>
    /// The staged programs loaded anew that write one of <paramref name="seeds"/>' sets (by IR set name) from the packet
    /// path start with its elements (<see cref="PacketPathSeed"/>), written to their copies before they are installed:
    /// for a set the transaction takes over from the kernel's packet path. Nothing when nothing is staged.
    /// </summary>
    public void SeedPacketPath(IReadOnlyDictionary<string, IReadOnlyList<PacketPathSeed>> seeds)
    {
        if (_staged != null && seeds.Count > 0) _staged = _staged with { Seeds = seeds };
    }

    /// <summary>The sets the staged transaction deleted and created anew (see <see cref="Prepare"/>), by IR set name.</summary>
    IReadOnlySet<string> _recreated = new HashSet<string>();
    RenewedSlots _renewed = RenewedSlots.None;

    /// <summary>Attach points currently enforced (their <see cref="AttachUnit.Key"/>).</summary>
    public IReadOnlyCollection<string> AttachPoints => _live.Keys;

    /// <summary>
    /// Stages <paramref name="ruleset"/>. Returns what it staged, or the failure of one attach point
    /// (nothing stays staged then, and nothing running changed).
    /// </summary>
    /// <param name="packetPath">
    /// The transaction's own element changes of sets programs write from the packet path, by IR set name: a kept
    /// program applies exactly those to such a map (it holds elements the packet path added, which the ruleset may
    /// show as of an earlier moment), and a program loaded anew starts with the replaced program's live elements
    /// except for those (<see cref="PacketPathCarry"/>).
    /// </param>
    /// <param name="recreated">
    /// The sets, by IR set name, the transaction deleted and created anew by the same name (`flush ruleset` or `delete
    /// table` and the table added back, `delete set` and `add set`): the kernel's new set holds only the transaction's
    /// elements, so a program reading one is loaded anew with maps of its own for it, nothing carried from the replaced
    /// program's (elements the packet path added with their state and limit buckets); the counter, quota and limit slots
    /// of its control-plane elements are among <paramref name="renewed"/>.
    /// </param>
    /// <param name="renewed">
    /// The slots of rules, objects and elements the transaction deleted and created anew with the same names (their table
    /// deleted and added back: it hands out the same rule handles again; a set or object deleted and added back): a program
    /// counting a renewed counter is loaded anew, and nothing the replaced programs counted is theirs; a renewed quota
    /// starts from its `used` and a renewed limit with a full bucket at the commit.
    /// </param>
    /// <param name="moveBack">
    /// Per netfilter attach point (<see cref="AttachUnit.Key"/>) that chains moved back from the kernel's nf_tables take, the
    /// priorities next to their own its new link may take when the kernel's copy still holds their own (EBUSY): each
    /// runs in the same order relative to every other hook, as the caller checked. The first free one is taken, and
    /// <see cref="InstallEarly"/> then has it filter beside the kernel's copy until the kernel commit removes that.
    /// </param>
    /// <param name="takenBack">
    /// The attach points (<see cref="AttachUnit.Key"/>) that take chains back from the kernel's nf_tables, new or not:
    /// <see cref="InstallEarly"/> installs their programs before the kernel commit.
    /// </param>
    /// <param name="keptLimits">
    /// Limit slots no rule of <paramref name="ruleset"/> spends that keep their bucket (a named limit object no rule names any
    /// more, which nf_tables keeps while its table holds it), with the limit each serves: a rule naming one again goes on from there.
    /// </param>
    public PrepareOutcome Prepare(Ruleset ruleset, IReadOnlyDictionary<string, SetChange>? packetPath = null, IReadOnlySet<string>? recreated = null,
        RenewedSlots? renewed = null, IReadOnlyDictionary<string, IReadOnlyList<int>>? moveBack = null, IReadOnlySet<string>? takenBack = null,
        IReadOnlyCollection<LimitStatement>? keptLimits = null)
    {
        ReleaseStaged();
        _loading.Clear();
        _moveBack = moveBack ?? new Dictionary<string, IReadOnlyList<int>>();
        _takenBack = takenBack ?? new HashSet<string>();
        _recreated = recreated ?? new HashSet<string>();
        _renewed = renewed ?? RenewedSlots.None;
        // the transaction's element changes of a recreated set are against the old one: its compiled contents are the truth
        packetPath ??= new Dictionary<string, SetChange>();
        if (_recreated.Count > 0) packetPath = packetPath.Where(c => !_recreated.Contains(c.Key)).ToDictionary();
        // elements the packet path made keep the statement lists they were made with (nft_dynset_new)
        ruleset = ElementLists.For(ruleset, LivePrograms, _recreated);
        _scans.Retain(ruleset);
        _runs.Retain(ruleset);
        var quotaBase = StageQuotas(ruleset);
        var limitBuckets = StageLimits(ruleset, keptLimits ?? []);
        var steps = new List<Step>();
        var units = AttachUnit.Group(ruleset);
        foreach (var unit in units)
        {
            var (step, failure) = Stage(ruleset, unit, packetPath);
            if (failure != null)
            {
                foreach (var s in steps) Release(s);
                return new PrepareOutcome(null, failure);
            }
            steps.Add(step!);
        }
        var keep = units.Select(u => u.Key).ToHashSet();
        var detach = _live.Values.Where(a => !keep.Contains(a.Key)).ToList();
        _staged = new Staged(steps, detach, [], quotaBase, limitBuckets, packetPath)
        {
            Recreated = _recreated,
            RenewedCounters = _renewed.Counters.ToList(),
            RenewedQuotas = quotaBase.Where(q => _renewed.Quotas.Contains(q.Key)).ToList(),
            RenewedLimits = limitBuckets.Where(l => _renewed.Limits.Contains(l.Key)).Select(l => (l.Key, l.Value.Max)).ToList(),
        };
        return new PrepareOutcome(new PrepareStats(steps.Count, steps.Count(s => s.Loaded != null),
            steps.Count(s => s.Loaded == null), steps.Sum(s => s.Diff?.Count ?? 0), steps.Count(s => s.Compiled == null), detach.Count)
        {
            Edited = steps.Count(s => s.Edited),
        }, null);
    }

    /// <summary>
    /// Stages element changes of sets as map updates in every program that reads those sets, encoded
    /// with the layouts the programs were compiled with. Null when some change cannot be exact map
    /// updates (then stage the whole ruleset with <see cref="Prepare"/>); nothing is compiled or loaded.
    /// </summary>
    public PrepareStats? PrepareElements(IReadOnlyList<SetChange> changes)
    {
        ReleaseStaged();
        var diffs = new List<MapDiff>();
        foreach (var a in _live.Values)
        {
            if (a.Program is not { } p) continue;
            foreach (var c in changes)
            {
                if (MapDiff.OfElements(p, c.Set, c.Added, c.Removed) is not { } d) return null;
                if (d.Changes.Count > 0) diffs.Add(d);
            }
        }
        _staged = new Staged([], [], diffs);
        var touched = diffs.Select(d => d.Program).Distinct().Count();
        return new PrepareStats(_live.Count, 0, touched, diffs.Sum(d => d.Count), _live.Count - touched, 0);
    }

    /// <summary>
    /// The quota slots of <paramref name="ruleset"/> with what each starts from. A slot no committed rule
    /// holds is new (or handed out again by the front-end): it starts at its `used` value now, which no
    /// running program can see, as only the programs this Prepare loads reference it.
    /// </summary>
    Dictionary<ulong, ulong> StageQuotas(Ruleset ruleset)
    {
        var slots = new Dictionary<ulong, ulong>();
        foreach (var q in StatefulStatements<QuotaStatement>(ruleset))
        {
            if (slots.ContainsKey(q.StateSlot)) continue;
            // the old object's slot, still spent by the running programs: set anew at the commit
            if (_renewed.Quotas.Contains(q.StateSlot))
            {
                slots[q.StateSlot] = q.Used;
                continue;
            }
            if (_quotaBase.TryGetValue(q.StateSlot, out var b) || _inheritedQuotas.TryGetValue(q.StateSlot, out b))
            {
                slots[q.StateSlot] = b;
                continue;
            }
            slots[q.StateSlot] = q.Used;
            if (QuotaMap.Holds(q.StateSlot)) (_quotas ??= QuotaMap.Create()).Set(q.StateSlot, q.Used);
        }
        return slots;
    }

    /// <summary>
    /// The limit slots of <paramref name="ruleset"/> and the <paramref name="kept"/> ones with the limit each bucket serves. A slot that served the same
    /// limit in the committed ruleset keeps its bucket (tokens and last as they are); a new one, or one handed
    /// to another limit, starts full as nft_limit_init leaves it. Only the programs this Prepare loads see it.
    /// </summary>
    Dictionary<ulong, LimitStatement> StageLimits(Ruleset ruleset, IReadOnlyCollection<LimitStatement> kept)
    {
        var slots = new Dictionary<ulong, LimitStatement>();
        foreach (var l in StatefulStatements<LimitStatement>(ruleset).Concat(kept))
        {
            if (!slots.TryAdd(l.StateSlot, l)) continue;
            // the old object's bucket, still spent by the running programs: filled anew at the commit
            if (_renewed.Limits.Contains(l.StateSlot) && _limitBuckets.ContainsKey(l.StateSlot)) continue;
            if (_limitBuckets.TryGetValue(l.StateSlot, out var was) && was == l) continue;
            if (!_limitBuckets.ContainsKey(l.StateSlot) && _inheritedLimits.Contains(l.StateSlot)) continue;
            if (LimitMap.Holds(l.StateSlot)) (_limits ??= LimitMap.Create()).Fill(l.StateSlot, l.Max);
        }
        return slots;
    }

    List<T> StatefulStatements<T>(Ruleset ruleset) where T : Statement => StatefulStatements<T>(ruleset, _scans);

    /// <summary>
    /// Every statement of type <typeparamref name="T"/> (a quota or a limit) of the rules (object maps' objects included)
    /// and of set elements (their own quotas and limits), in that order. The rules' come from each chain's kept scan
    /// (<see cref="ChainScan.Stateful"/>: an append folds the new rules alone); without <paramref name="scans"/>, from a
    /// walk of every rule, which gives the same list.
    /// </summary>
    internal static List<T> StatefulStatements<T>(Ruleset ruleset, ChainFolds<ChainScan>? scans) where T : Statement
    {
        var found = new List<T>();
        void Rules(string chain, ValueList<Rule> rules)
        {
            if (scans != null)
            {
                foreach (var s in scans.Of(chain, rules).Stateful)
                    if (s is T t) found.Add(t);
                return;
            }
            foreach (var r in rules)
                foreach (var s in r.Statements)
                    if (s is T t) found.Add(t);
                    else if (s is ObjectMapStatement o)
                        foreach (var x in o.Objects)
                            if (x is T ot) found.Add(ot);
        }
        foreach (var c in ruleset.BaseChains) Rules(c.Name, c.Rules);
        foreach (var c in ruleset.Chains) Rules(c.Name, c.Rules);
        foreach (var s in ruleset.Sets)
            if (s.Data is not SetData.Object)
                foreach (var e in s.Elements)
                    foreach (var st in e.Statements)
                        if (st is T t) found.Add(t);
        return found;
    }

    /// <summary>
    /// Bytes a quota slot consumed beyond what it started from, or since its last reset: the emulation
    /// adds its own count (the `used` the rule or object was created with, zeroed by a reset) to this.
    /// </summary>
    public ulong Quota(ulong slot)
    {
        if (QuotasFor(slot) is not { } quotas) return 0;
        var v = quotas.Read(slot);
        var b = _quotaBase[slot];
        return v >= b ? v - b : 0;
    }

    /// <summary>
    /// Makes a quota slot read <paramref name="used"/> from now on (a quota the kernel consumed until now), atomically against packets adding to it.
    /// <paramref name="start"/>: the slot's start point from now on (what the kernel's copy counted from: 0 after a reset, where
    /// the created `used` would have it go over early); its own when null.
    /// </summary>
    public void SetQuota(ulong slot, ulong used, ulong? start = null)
    {
        if (QuotasFor(slot) is not { } quotas) return;
        if (start is { } s) _quotaBase[slot] = s;
        // from the slot's value, not from Quota's: a slot below its base reads 0 there, and would be left below it
        quotas.Subtract(slot, unchecked(quotas.Read(slot) - (_quotaBase[slot] + used)));
    }

    /// <summary>nft_quota's reset: takes back the bytes consumed as read now (packets since still count).</summary>
    public void ResetQuota(ulong slot)
    {
        if (QuotasFor(slot) is not { } quotas) return;
        quotas.Subtract(slot, quotas.Read(slot));
        _quotaBase[slot] = 0;
    }

    /// <summary>The quota map, when <paramref name="slot"/> is a committed quota's slot it holds (BPF spends it); else null.</summary>
    QuotaMap? QuotasFor(ulong slot) => _quotas != null && _quotaBase.ContainsKey(slot) && QuotaMap.Holds(slot) ? _quotas : null;

    (Step?, EnforcementFailure?) Stage(Ruleset ruleset, AttachUnit unit, IReadOnlyDictionary<string, SetChange> packetPath)
    {
        var source = UnitSource.Of(ruleset, unit.Chains, _scans);
        _live.TryGetValue(unit.Key, out var existing);
        // a program reading a recreated set is loaded anew: its maps hold the old set's elements and their state; one
        // counting a renewed rule's counter too: its counter maps hold the old rule's count, the new one counts from its commit
        if (existing?.Program is { } reads && (reads.Compiled.SetLayouts.Keys.Any(_recreated.Contains) || reads.Compiled.CounterSlots.Keys.Any(_renewed.Counters.Contains)))
            return CompileAndLoad(ruleset, unit, source, existing, null, packetPath);
        // the sets it only writes from the packet path are in its source without elements: the transaction's element
        // changes of them are map updates (when they cannot be exact ones, it is compiled and loaded anew below)
        if (existing?.Program is { } unchanged && existing.Source == source
            && new MapDiff(unchanged, []).WithPacketPath(packetPath) is { } writes)
            return (new Step(unit, source, existing, null, null, null, writes.Changes.Count > 0 ? writes : null), null);
        // rules appended after the chain's classifier (or changed among those appended): only the chain tail's
        // program is compiled and loaded, into its prog-array slot at the commit
        if (ChainTails && existing is { Program: { Compiled.Tail: not null } tailed, Source: { } prior } && packetPath.Count == 0
            && ChainTailEdit.Between(ruleset, unit, tailed.Compiled, prior, source) is var (withTail, tailCode))
        {
            BpfProgram? tailProgram = null;
            try
            {
                if (tailCode != null) tailProgram = tailed.LoadTail(tailCode);
            }
            catch (BpfException)
            {
                // not verified on its own: the chain is compiled whole below
            }
            if (tailCode == null || tailProgram != null)
                return (new Step(unit, source, existing, null, withTail, null, null, Edited: true, TailSwap: true, Tail: tailProgram), null);
        }
        // the edits below know nothing of a chain tail: a program running one is compiled whole
        var tailless = existing?.Program?.Compiled.Tail is not { Rules: > 0 };
        // a rule joining or leaving a grouped run, or appended to a classified one: map updates found from the change,
        // nothing lowered or compiled
        if (tailless && existing is { Program: { } kept, Source: { } was } && packetPath.Count == 0
            && (GroupedRunEdit.Between(kept, was, source, _runs) ?? ClassifiedRunEdit.Between(kept, was, source)) is { } edit)
            return (new Step(unit, source, existing, null, edit.Compiled, null, edit.Diff, Edited: true), null);
        // a rule appended to a grouped run this program has no code for (an ip rule in an inet chain's ipv6 program):
        // the program stays as it is; its maps hold what it was compiled with (not a program adopted from its pins)
        if (tailless && existing is { Program: { TablesAsCompiled: true } same, Source: { } before } && packetPath.Count == 0
            && UnseenRunAppend.Keeps(unit.Hook, unit.Ipv6, before, source, _runs))
            return (new Step(unit, source, existing, null, same.Compiled, null, new MapDiff(same, []), Edited: true), null);
        return CompileAndLoad(ruleset, unit, source, existing, existing?.Program, packetPath);
    }

    /// <summary>
    /// Compiles <paramref name="unit"/> and, unless <paramref name="running"/> (the program it replaces, when its maps may
    /// be kept) takes it with map updates, loads it anew.
    /// </summary>
    (Step?, EnforcementFailure?) CompileAndLoad(Ruleset ruleset, AttachUnit unit, UnitSource source, Attachment? existing, LoadedProgram? running,
        IReadOnlyDictionary<string, SetChange> packetPath)
    {
        EnforcementFailure Fail(int errno, string why, Exception e) => new(unit, errno, why, e);
        CompiledProgram compiled;
        // compiled with the running program's counter slots: rules added as map elements keep the code the same
        var layout = existing?.Program is { } p ? CounterLayout.Of(p.Compiled) : null;
        try
        {
            // and its classifier class ids: a classified rule added or deleted is then a few table entries (issue 12)
            compiled = ProgramCompiler.Compile(ruleset, unit.Chains, unit.Ipv6, counters: layout,
                classIds: existing?.Program is { } q ? ClassIdHint.Of(q) : null);
            // a compile takes a running chain tail's rules into the program (its classifier): the slot empties once the
            // tables hold them (the set batch comes first in Commit: meanwhile a packet finds them in both, first there)
            if (running != null && MapDiff.Between(running, compiled)?.WithPacketPath(packetPath) is { } diff)
                return (new Step(unit, source, existing, null, compiled, null, diff, TailSwap: running.Compiled.Tail is { Rules: > 0 }), null);
            // a program loaded anew gets a counter array of its own: slots left by deleted rules are dropped when many
            if (layout != null && compiled.CounterSlotsUsed > 2 * compiled.CounterSlots.Count + 64)
                compiled = ProgramCompiler.Compile(ruleset, unit.Chains, unit.Ipv6);
        }
        catch (Exception e) when (e is CodegenException or ArgumentException or Bpf.BpfAssemblyException)
        {
            return (null, Fail(EOPNOTSUPP, $"cannot be compiled to BPF: {e.Message}", e));
        }
        // refused here, as the carry into the new map happens in Commit, which must not fail
        if (existing?.Program is { } shrunk && PacketPathCarry.Overflowing(shrunk, compiled, packetPath, _recreated) is { } overflow)
            return (null, Fail(EOPNOTSUPP, $"cannot be loaded into BPF at {unit.Hook}: {overflow}", new InvalidOperationException(overflow)));
        LoadedProgram loaded;
        try
        {
            loaded = LoadedProgram.Load(compiled, compiled.Maps.Any(m => m.Name == CompiledProgram.QuotasMap) ? _quotas ??= QuotaMap.Create() : null,
                compiled.Maps.Any(m => m.Name == CompiledProgram.LimitsMap) ? _limits ??= LimitMap.Create() : null, SharedCopies,
                // the buckets of the elements it carries from the program it replaces (ElementLists decided the lists for that)
                existing?.Program is { } replaced ? spec => ElementLists.SharedBuckets(compiled, spec, replaced, _recreated) : null);
        }
        catch (BpfVerifierException e)
        {
            // not the load's errno (EFAULT, E2BIG, ENOSPC: "Bad address" from nft), which says nothing about the chain
            return (null, Fail(EOPNOTSUPP, $"cannot be loaded into BPF: the verifier rejected the program at {unit.Hook}: {e.Reason}", e));
        }
        catch (BpfException e)
        {
            return (null, Fail(e.Errno, $"loading the program at {unit.Hook} failed: {e.Message}", e));
        }
        Attachment? created = null;
        if (existing == null)
        {
            try
            {
                created = CreateAttachment(unit, compiled);
            }
            catch (Exception e)
            {
                loaded.Dispose();
                if (e is not BpfException b) throw;
                var why = b.Errno == ENODEV && unit.Device is { } d
                    ? $"device {d} does not exist; bpfilter-nft attaches {unit.Hook} only to an existing device"
                    : b.Errno == EBUSY && _moveBack.TryGetValue(unit.Key, out var tried)
                    ? $"cannot attach at {unit.Hook}: its priority is the kernel's copy's until the kernel commit, and " +
                      (tried.Count == 0 ? "no priority next to it keeps its order with the other hooks there"
                          : $"the priorities next to it that keep its order with the other hooks there ({string.Join(", ", tried)}) are taken") + $" ({b.Message})"
                    : $"cannot attach at {unit.Hook}: {b.Message}";
                return (null, Fail(b.Errno, why, e));
            }
        }
        if (SharedChanges(loaded, packetPath) is not { } shared)
        {
            loaded.Dispose();
            created?.Dispose();
            return (null, Fail(EOPNOTSUPP, $"cannot be loaded into BPF at {unit.Hook}: the transaction's elements of a set the packet path writes are not exact map updates", new InvalidOperationException("shared set map")));
        }
        _loading.Add(loaded);
        return (new Step(unit, source, existing, created, compiled, loaded, null, shared), null);
    }

    /// <summary>
    /// A new attach point's link: at its own priority, or for a netfilter one chains moved back from the kernel take while
    /// the kernel's copy holds that priority (EBUSY), at the first free one of <see cref="_moveBack"/>'s.
    /// </summary>
    Attachment CreateAttachment(AttachUnit unit, CompiledProgram compiled)
    {
        try
        {
            return Attachment.Create(unit, compiled, xdpMode);
        }
        catch (BpfException e) when (e.Errno == EBUSY && _moveBack.TryGetValue(unit.Key, out var next) && next.Count > 0)
        {
            foreach (var priority in next)
                try
                {
                    return Attachment.Create(unit, compiled, xdpMode, priority);
                }
                catch (BpfException taken) when (taken.Errno == EBUSY) { }
            throw;
        }
    }

    /// <summary>Netfilter attach points whose links run at a priority next to their own, with that priority.</summary>
    public IReadOnlyDictionary<string, int> MovedLinks =>
        _live.Values.Where(a => a.LinkPriority != null).ToDictionary(a => a.Key, a => a.LinkPriority!.Value);

    /// <summary>
    /// The transaction's element changes of the packet-written sets <paramref name="loaded"/> references with other
    /// programs, as map updates (null: not exact); applied with the commit's batch, once per shared map.
    /// </summary>
    static MapDiff? SharedChanges(LoadedProgram loaded, IReadOnlyDictionary<string, SetChange> packetPath)
    {
        var changes = new List<MapDiff.MapChange>();
        foreach (var (set, change) in packetPath)
        {
            if (loaded.PacketWrittenCopies(ProgramCompiler.SetMapName(set)) is not { Holders.Count: > 1 }) continue;
            if (MapDiff.OfElements(loaded, set, change.Added, change.Removed) is not { } d) return null;
            changes.AddRange(d.Changes);
        }
        return new MapDiff(loaded, changes);
    }

    /// <summary>Programs this Prepare loaded so far (staged, not installed): later ones share their packet-written set maps.</summary>
    readonly List<LoadedProgram> _loading = [];

    /// <summary>
    /// The copies of a set the packet path writes that a running or staged program already holds: a program loaded
    /// anew references them (one map for every program of the set, see <see cref="SetCopies"/>), the replaced
    /// program's included, so the elements packets added stay where they are through the swap.
    /// A recreated set's copies are only those this Prepare made.
    /// </summary>
    SetCopies? SharedCopies(MapSpec spec) =>
        (_recreated.Any(r => ProgramCompiler.SetMapName(r) == spec.Name) ? [] : _live.Values.Select(a => a.Program).OfType<LoadedProgram>()).Concat(_loading)
            .Where(p => p.Compiled.Maps.Any(m => m.Name == spec.Name && m.PacketStatements == spec.PacketStatements))
            .Select(p => p.PacketWrittenCopies(spec.Name)).FirstOrDefault(c => c != null && c.Fits(spec));

    /// <summary>
    /// Makes what was staged live. Prepare did everything that can fail; a map or link update failing
    /// here is a kernel-side surprise: the previous program keeps running at that attach point, and
    /// each such failure is returned.
    /// </summary>
    public IReadOnlyList<string> Commit()
    {
        var errors = new List<string>();
        if (_staged is not { } staged) return errors;
        _staged = null;
        // every set map change of the transaction becomes visible at once (one generation switch per program)
        var kept = staged.Steps.Where(s => s.Loaded == null && s.Diff != null).Select(s => s.Diff!);
        var shared = staged.Steps.Where(s => s.Loaded != null && s.Shared != null).Select(s => s.Shared!);
        var batch = SetBatch.Apply(staged.Elements.Concat(kept).Concat(shared).SelectMany(d => d.Batch).ToList());
        _loading.Clear();
        errors.AddRange(batch.Errors);
        if (staged.QuotaBase is { } quotaBase) _quotaBase = quotaBase;
        if (staged.LimitBuckets is { } limitBuckets) _limitBuckets = limitBuckets;
        if (staged.QuotaBase != null) ForgetInherited();
        // the new objects start as the kernel's do, from the commit on (in the shared maps, whichever program spends them)
        foreach (var (slot, used) in staged.RenewedQuotas)
            if (QuotaMap.Holds(slot)) _quotas?.Set(slot, used);
        foreach (var (slot, max) in staged.RenewedLimits)
            if (LimitMap.Holds(slot)) _limits?.Fill(slot, max);
        foreach (var d in staged.Elements)
            // the maps no longer hold what the recorded source says: compile next time to diff
            foreach (var a in _live.Values.Where(a => ReferenceEquals(a.Program, d.Program))) a.Source = null;
        foreach (var s in staged.Steps.Where(s => s.Loaded == null))
        {
            try
            {
                var at = s.Existing ?? s.Created!;
                at.Unit = s.Unit;
                // a program whose maps kept their contents still runs what the recorded source says
                if (s.Diff != null && batch.Failed.Contains(s.Diff.Program)) continue;
                // the slot first: when it cannot be written, the old tail and the recorded source stay
                if (s.TailSwap) at.Program!.SwapTail(s.Tail, s.Compiled!);
                at.Source = s.Source;
                // same code, newer compilation (chain names in comments, map contents): pinned and
                // found again under the new compilation's digest, which a restart recomputes
                if (s.Diff != null && s.Compiled != null) s.Diff.Program.Recompiled(s.Compiled);
            }
            catch (Exception e)
            {
                errors.Add($"commit at {s.Unit.Key} failed, the previous program keeps running there: {e.Message}");
            }
        }
        SwapIn(staged.Steps.Where(s => s.Loaded != null), staged.PacketPath ?? new Dictionary<string, SetChange>(), staged.Recreated, staged.Seeds, staged.Seeded, errors);
        SettleEarly();
        foreach (var a in staged.Detach)
        {
            _live.Remove(a.Key);
            if (PinRoot is { } root)
            {
                try
                {
                    Attachment.Unpin(PinDir(root, a.Unit));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    errors.Add($"unpinning {a.Key} failed, it stays attached: {e.Message}");
                }
            }
            if (a.Program is { } p) _ledger.Fold(p);
            a.Dispose();
        }
        // renewed counters are other objects than the old ones of the same names (a recreated set's elements: nft_set_elem_init
        // gives them new counters): nothing the replaced programs counted for the old ones is theirs
        foreach (var id in staged.RenewedCounters) _ledger.Restore(id, default, default);
        // element updates only (PrepareElements): the same links, programs and maps, so the pins stand as they
        // are; walking the pin directories would cost every `add element` a few dozen bpffs syscalls
        if (staged.Steps.Count > 0 || staged.Detach.Count > 0 || staged.QuotaBase != null || staged.LimitBuckets != null)
            errors.AddRange(SyncPins());
        return errors;
    }

    public void Abort() => ReleaseStaged();

    /// <summary>Prepare then Commit; a failure is thrown as the exception that caused it, and nothing changes.</summary>
    public void Apply(Ruleset ruleset)
    {
        var outcome = Prepare(ruleset);
        if (outcome.Failure is { } f) ExceptionDispatchInfo.Throw(f.Exception);
        var errors = Commit();
        if (errors.Count > 0) throw new InvalidOperationException(string.Join("; ", errors));
    }

    void ReleaseStaged()
    {
        _loading.Clear();
        if (_staged is not { } staged)
        {
            _early.Clear();
            _earlyFirst.Clear();
            return;
        }
        // programs installed early whose commit never came: the step frees each, not the link that ran it as well (the
        // staged changes tell what the early programs' sets hold that the replaced ones' must not)
        WithdrawEarly();
        _staged = null;
        _early.Clear();
        _earlyFirst.Clear();
        foreach (var s in staged.Steps) Release(s);
    }

    static void Release(Step s)
    {
        s.Loaded?.Dispose();
        s.Created?.Dispose();
        s.Tail?.Dispose();
    }

    /// <summary>Packets and bytes of a rule counter id: every running program holding it, plus what replaced programs counted, minus the last reset.</summary>
    public (ulong Packets, ulong Bytes) Counter(ulong id) => _ledger.Read(id, Running(id));

    /// <summary>Makes the counter read zero from now on.</summary>
    public void ResetCounter(ulong id) => _ledger.Reset(id, Running(id));

    /// <summary>Makes the counter read <paramref name="value"/> from now on (a counter the kernel counted until now).</summary>
    public void SetCounter(ulong id, (ulong Packets, ulong Bytes) value) => _ledger.Set(id, Running(id), value);

    /// <summary>What a counter id carries over from replaced programs and the running total its last reset took as zero.</summary>
    public ((ulong Packets, ulong Bytes) Carried, (ulong Packets, ulong Bytes) Zero) CounterLedgerEntry(ulong id) => _ledger.Entry(id);

    /// <summary>Restores a <see cref="CounterLedgerEntry"/> (a restart: the programs that counted it are gone, their totals are not).</summary>
    public void RestoreCounterLedger(ulong id, (ulong Packets, ulong Bytes) carried, (ulong Packets, ulong Bytes) zero) =>
        _ledger.Restore(id, carried, zero);

    /// <summary>Forgets carried totals of counter ids no rule holds any more (the front-end hands them out again).</summary>
    public void RetainCounters(Func<ulong, bool> live) => _ledger.Forget(live);

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

    /// <summary>What is attached where: hook, chains, link and program ids, the program's disassembly.</summary>
    public IReadOnlyList<AttachPointInfo> Describe() => _live.Values.Select(a =>
    {
        var (link, attached, prog) = a.Ids();
        var compiled = a.Program?.Compiled;
        return new AttachPointInfo(a.Unit, link, attached, prog, a.Dispatcher != null || a.Slots != null,
            compiled?.Disassembly ?? "", compiled?.Instructions.Length + compiled?.Segments.Sum(s => s.Length) ?? 0);
    }).ToList();

    /// <summary>
    /// Per attach point, the run statistics of the program its link runs (the netfilter dispatcher, whose runs
    /// include the tail-called program's: the kernel accounts a run to the program the hook calls, not to a
    /// tail call's target). Null stats when that program cannot be read.
    /// </summary>
    public IReadOnlyList<(AttachUnit Unit, uint LinkId, BpfRunStats? Stats)> RunStats() =>
        _live.Values.Select(a => (a.Unit, a.Link.Ids.LinkId, a.RunStats())).ToList();

    /// <summary>The programs filtering now, one per attach point.</summary>
    public IReadOnlyList<LoadedProgram> LivePrograms => _live.Values.Select(a => a.Program).OfType<LoadedProgram>().ToList();

    /// <summary>The kernel id of the program filtering at an attach point, 0 if none.</summary>
    public uint ProgramId(string key) => _live.TryGetValue(key, out var a) ? a.Ids().ProgramId : 0;

    /// <summary>Runs the program at an attach point over a packet (BPF_PROG_TEST_RUN); for tests.</summary>
    public TestRunResult? TestRun(string key, ReadOnlySpan<byte> packet, ReadOnlySpan<byte> ctx = default) =>
        _live.TryGetValue(key, out var a) && a.Program is { } p ? p.TestRun(packet, 1, ctx) : null;

    /// <summary>Pins every attach point's link (and netfilter slot map) under <paramref name="dir"/>, one directory per attach point.</summary>
    public void Pin(string dir)
    {
        foreach (var a in _live.Values) a.Pin(PinDir(dir, a.Unit));
    }

    /// <summary>
    /// Reopens the attach points of <paramref name="ruleset"/> pinned under <paramref name="dir"/> (by a
    /// previous enforcer or process): their links keep running what they ran until the next commit
    /// replaces the program on the same link. Returns how many were reopened.
    /// </summary>
    public int Adopt(Ruleset ruleset, string dir) => Adopt(ruleset, dir, out _);

    /// <summary>
    /// <see cref="Adopt(Ruleset, string)"/>, also reopening each attach point's program with its maps when the
    /// pinned one is what the ruleset compiles to and what the link runs: that attach point then keeps its
    /// program (same id, counters and set contents as they are) through the next commit.
    /// <paramref name="programs"/> counts those.
    /// </summary>
    public int Adopt(Ruleset ruleset, string dir, out int programs)
    {
        ReleaseStaged();
        int n = 0;
        programs = 0;
        // the sets as the pinned programs compiled them: their elements' tags name these lists
        ruleset = ElementLists.Inherit(ruleset, _inheritedElementLists);
        foreach (var unit in AttachUnit.Group(ruleset))
        {
            var at = PinDir(dir, unit);
            if (_live.ContainsKey(unit.Key) || !File.Exists(Path.Combine(at, "link"))) continue;
            Attachment attachment;
            try
            {
                attachment = Attachment.Adopt(unit, at);
            }
            catch (BpfException)
            {
                continue; // a pin that cannot be reopened: the commit attaches anew, SyncPins removes the pin
            }
            _live[unit.Key] = attachment;
            n++;
            LoadedProgram? loaded = null;
            try
            {
                var counters = _inheritedCounterLayouts.GetValueOrDefault(unit.Key);
                var compiled = ProgramCompiler.Compile(ruleset, unit.Chains, unit.Ipv6, counters: counters);
                var progDir = Attachment.ProgramDir(at, compiled);
                if (!File.Exists(Path.Combine(progDir, "prog")) && TailedProgram(ruleset, unit, at, counters) is { } tailed)
                    (compiled, progDir) = tailed;
                if (!File.Exists(Path.Combine(progDir, "prog"))) continue;
                loaded = LoadedProgram.Adopt(compiled, progDir);
                if (attachment.AdoptProgram(loaded, UnitSource.Of(ruleset, unit.Chains))) programs++;
                else loaded.Dispose();
            }
            catch (Exception e) when (e is CodegenException or ArgumentException or Bpf.BpfAssemblyException or BpfException or InvalidDataException or IOException)
            {
                // the link alone is adopted: the next commit installs a freshly loaded program on it
                loaded?.Dispose();
            }
        }
        // each program reopened its own pins: programs referencing the same packet-written set maps hold them as one
        LoadedProgram.ShareAdopted(LivePrograms);
        return n;
    }

    /// <summary>
    /// What a program pinned under <paramref name="at"/> with a filled chain tail stands for, and its directory: the chain's
    /// first <see cref="ChainTail.From"/> rules (named by the tail's pin) compiled as the program was, the rest as its tail
    /// (<see cref="ChainTailEdit.Filled"/>), both with the counter layout the earlier process saved. Null when no pinned
    /// program has a tail or the ruleset does not compile to the pinned one (its directory is named by the digest of both
    /// codes and the map shapes): the attach point is then loaded anew, as any program that is not what the ruleset gives.
    /// </summary>
    static (CompiledProgram Compiled, string Dir)? TailedProgram(Ruleset ruleset, AttachUnit unit, string at, CounterLayout? counters)
    {
        if (unit.Chains.Count != 1 || !Directory.Exists(at)) return null;
        var chain = unit.Chains[0];
        foreach (var dir in Directory.EnumerateDirectories(at))
        {
            if (LoadedProgram.PinnedTailFrom(dir) is not { } from || from <= 0 || from >= chain.Rules.Count) continue;
            var head = ProgramCompiler.Compile(ruleset, [chain with { Rules = chain.Rules.Items.RemoveRange(from, chain.Rules.Count - from).ToValueList() }],
                unit.Ipv6, counters: counters);
            if (head.Tail?.From != from || ChainTailEdit.Filled(ruleset, chain, head, unit.Ipv6, counters) is not var (compiled, _)) continue;
            if (Attachment.ProgramDir(at, compiled) == dir) return (compiled, dir);
        }
        return null;
    }

    /// <summary>Where <see cref="Commit"/> keeps every attach point pinned (null: nothing is pinned).</summary>
    public string? PinRoot { get; set; }

    /// <summary>
    /// Pins every live attach point under <see cref="PinRoot"/> (link, slot map, running program and maps) and
    /// unpins every other directory there: attach points this process no longer holds, or that an earlier
    /// process left and nothing adopted. Errors are returned, one per attach point.
    /// </summary>
    public IReadOnlyList<string> SyncPins()
    {
        var errors = new List<string>();
        if (PinRoot is not { } root) return errors;
        var keep = new HashSet<string>(StringComparer.Ordinal) { LimitMatchDir };
        foreach (var a in _live.Values)
        {
            var at = PinDir(root, a.Unit);
            keep.Add(Path.GetFileName(at));
            try
            {
                a.PinAll(at);
            }
            catch (Exception e) when (e is BpfException or IOException or UnauthorizedAccessException)
            {
                errors.Add($"pinning {a.Key} under {at} failed, it detaches if this process exits: {e.Message}");
            }
        }
        errors.AddRange(PinSharedMaps(root));
        if (!Directory.Exists(root)) return errors;
        foreach (var stale in Directory.EnumerateDirectories(root))
        {
            if (keep.Contains(Path.GetFileName(stale))) continue;
            try
            {
                Attachment.Unpin(stale);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add($"unpinning {stale} failed: {e.Message}");
            }
        }
        return errors;
    }

    /// <summary>The pin directory of an attach point: its key with file-system-safe characters.</summary>
    public static string PinDir(string dir, AttachUnit unit) =>
        Path.Combine(dir, new string(unit.Key.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' ? c : '_').ToArray())); // bpffs refuses names with a dot

    /// <summary>
    /// Closes every fd: attach points pinned under <see cref="PinRoot"/> stay attached and keep filtering
    /// (a process exit does this too); unpinned ones detach. Nothing is detached explicitly.
    /// </summary>
    public void Dispose()
    {
        ReleaseStaged();
        foreach (var a in _live.Values) a.Dispose();
        _live.Clear();
        _quotas?.Dispose();
        _quotas = null;
        _limits?.Dispose();
        _limits = null;
        _limitOuter?.Dispose();
        _limitOuter = null;
    }
}

/// <summary>Added and removed elements of one IR set.</summary>
public sealed record SetChange(string Set, IReadOnlyList<SetElement> Added, IReadOnlyList<SetElement> Removed);

/// <summary>What Prepare staged: attach points, programs loaded, attach points kept (with map updates), those not even recompiled, and those to detach.</summary>
public sealed record PrepareStats(int AttachPoints, int Loaded, int Kept, int MapUpdates, int Unchanged, int Detach)
{
    /// <summary>Of those kept, how many took map updates worked out from the change, without compiling (a grouped or classified run's rule).</summary>
    public int Edited { get; init; }

    public override string ToString() =>
        $"{AttachPoints} attach point(s): {Loaded} program(s) loaded, {Kept} kept with {MapUpdates} map update(s), {Detach} to detach, {Unchanged} not recompiled" +
        (Edited > 0 ? $" ({Edited} edited in place: a grouped or classified run's rule, or a chain tail)" : "");
}

/// <summary>Why an attach point cannot be staged: the errno the kernel would answer, the reason, and the exception behind it.</summary>
public sealed record EnforcementFailure(AttachUnit Unit, int Errno, string Reason, Exception Exception);

/// <summary>Either the stats of what was staged or the failure.</summary>
public sealed record PrepareOutcome(PrepareStats? Stats, EnforcementFailure? Failure);

/// <summary>One attach point: where, which chains, link and program ids, the program's disassembly.</summary>
public sealed record AttachPointInfo(AttachUnit Unit, uint LinkId, uint AttachedProgramId, uint ProgramId, bool ViaDispatcher,
    string Disassembly, int InstructionCount);
