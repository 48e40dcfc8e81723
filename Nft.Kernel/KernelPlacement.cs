using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>A transition built and validated by the kernel, not yet applied.</summary>
public sealed class PreparedTransition
{
    internal PreparedTransition(KernelBatch batch, IReadOnlyList<SourceTable> desired, HashSet<TableKey> touched, uint generation,
        IReadOnlyList<SourceTable> previousWithCounters)
    {
        Batch = batch;
        Desired = desired;
        Touched = touched;
        Generation = generation;
        PreviousWithCounters = previousWithCounters;
    }

    /// <summary>The messages that will be sent (empty when the kernel already holds the desired content).</summary>
    public KernelBatch Batch { get; }
    public IReadOnlyList<SourceTable> Desired { get; }
    internal HashSet<TableKey> Touched { get; }
    /// <summary>The kernel's generation when validated; the commit carries it (NFNL_BATCH_GENID) so a change in between is refused.</summary>
    public uint Generation { get; }
    internal IReadOnlyList<SourceTable> PreviousWithCounters { get; }
}

/// <summary>
/// Keeps the kernel's own nf_tables (in the namespace of <see cref="KernelNfTablesSocket"/>) holding
/// exactly a desired set of tables. Two-phase: <see cref="Prepare"/> builds the one batch from the
/// current placement to the desired one and has the kernel validate it without applying it;
/// <see cref="Commit"/> applies it atomically; <see cref="Abort"/> forgets it;
/// <see cref="RollbackLastCommit"/> applies the inverse transition when the other side of a
/// cross-side transaction failed after this one committed. The caller's rule handles (the
/// emulation's) are mapped to the kernel's, so <see cref="ReadCounters"/> answers in the caller's terms.
/// Not thread-safe: one transaction at a time, as nf_tables itself.
/// </summary>
public sealed class KernelPlacement
{
    readonly KernelNfTablesSocket _socket;
    Dictionary<TableKey, PlacedTable> _placed = [];
    /// <summary>Per placed table, kernel rule handle → caller's: read by the trace relay's thread, so replaced whole.</summary>
    volatile Dictionary<TableKey, Dictionary<ulong, ulong>> _callerHandles = [];
    /// <summary>The map before the last change: a trace the kernel sent just before a commit, read after it, still names its rule.</summary>
    volatile Dictionary<TableKey, Dictionary<ulong, ulong>> _previousCallerHandles = [];
    /// <summary>Reset while a commit is applied and its handles are not learnt yet.</summary>
    readonly ManualResetEventSlim _settled = new(true);
    PreparedTransition? _pending;
    IReadOnlyList<SourceTable>? _rollbackTo;

    public KernelPlacement(KernelNfTablesSocket socket) => _socket = socket;

    /// <summary>The socket on the namespace's nf_tables (e.g. for <see cref="ConntrackSwitch"/>, between transitions).</summary>
    public KernelNfTablesSocket Socket => _socket;

    /// <summary>The tables currently placed, as the caller gave them.</summary>
    public IReadOnlyList<SourceTable> Placed => _placed.Values.Select(p => p.Source).ToList();

    public bool HasPending => _pending != null;

    /// <summary>
    /// Per `limit` of a rule the next transitions send, the pinned socket filter that runs BPF's bucket for it (see
    /// <see cref="XtBpfMatch"/>), or null: the kernel copy runs a `limit` of its own.
    /// </summary>
    public Func<LimitAt, string?>? LimitMatchPath { get; set; }
    public bool CanRollback => _rollbackTo != null;

    /// <summary>The kernel's handle for the caller's rule <paramref name="ruleHandle"/>, if placed.</summary>
    public ulong? KernelRuleHandle(byte family, string table, ulong ruleHandle) =>
        _placed.TryGetValue(new TableKey(family, table), out var p) && p.KernelRuleHandles.TryGetValue(ruleHandle, out var k) ? k : null;

    /// <summary>
    /// The caller's handle of the kernel's rule <paramref name="kernelRuleHandle"/> in a table the placement
    /// holds (0 when no rule is asked about); null for a table it does not hold (stale, the conntrack
    /// switch's) or a rule it does not know. Safe from any thread: trace events are translated while
    /// transitions go on, and see the placement before or after a commit, never half of it.
    /// </summary>
    public ulong? CallerRuleHandle(byte family, string table, ulong? kernelRuleHandle) =>
        Lookup(_callerHandles, family, table, kernelRuleHandle) ?? Lookup(_previousCallerHandles, family, table, kernelRuleHandle);

    static ulong? Lookup(Dictionary<TableKey, Dictionary<ulong, ulong>> handles, byte family, string table, ulong? kernelRuleHandle)
    {
        if (!handles.TryGetValue(new TableKey(family, table), out var map)) return null;
        if (kernelRuleHandle is not { } k) return 0;
        return map.TryGetValue(k, out var caller) ? caller : null;
    }

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) while a commit is being applied, whose new rules the kernel
    /// may already trace before their handles are learnt; false at once when none is.
    /// </summary>
    public bool WaitWhileCommitting(TimeSpan timeout)
    {
        if (_settled.IsSet) return false;
        _settled.Wait(timeout);
        return true;
    }

    void SetPlaced(Dictionary<TableKey, PlacedTable> placed)
    {
        _placed = placed;
        _previousCallerHandles = _callerHandles;
        _callerHandles = placed.Where(p => !p.Value.Stale)
            .ToDictionary(p => p.Key, p => p.Value.KernelRuleHandles.ToDictionary(kv => kv.Value, kv => kv.Key));
    }

    /// <summary>
    /// Builds the transition to <paramref name="desired"/> (every table the kernel should hold;
    /// tables placed before and absent here are deleted) and sends it to the kernel for validation
    /// only. A refusal raises <see cref="KernelNfTablesException"/>, each error naming the message
    /// (table, chain, caller's rule handle) it belongs to; nothing is applied either way.
    /// <paramref name="packetPath"/>: the sets the kernel's packet path writes, with the transaction's own element
    /// changes (<see cref="PacketPathSet"/>).
    /// <paramref name="listed"/>: the same tables as the caller lists them, when <paramref name="desired"/> presets state
    /// (a quota sent with bytes consumed elsewhere): their anonymous quotas' `used` is the start point
    /// <see cref="ReadCounters()"/> takes away, so the preset reads as consumed since the rule was created.
    /// <paramref name="renewed"/>: what the transaction deleted and created anew (<see cref="KernelRenewal"/>).
    /// An element's Expiration in <paramref name="desired"/> is the time it has left, which a set made anew is sent.
    /// </summary>
    public PreparedTransition Prepare(IReadOnlyList<SourceTable> desired, IEnumerable<PacketPathSet>? packetPath = null,
        IReadOnlyList<SourceTable>? listed = null, KernelRenewal? renewed = null)
    {
        if (_pending != null) throw new InvalidOperationException("a transition is already prepared: commit or abort it first");
        uint generation = _socket.GetGeneration();
        var snapshots = new Dictionary<TableKey, KernelCounters>();
        KernelCounters CountersOf(TableKey key)
        {
            if (!snapshots.TryGetValue(key, out var c)) snapshots[key] = c = ReadCounters(key);
            return c;
        }
        var batch = TransitionPlanner.Plan(_placed, desired, CountersOf, out var touched, packetPath, renewed, LimitMatchPath);
        // what to go back to if the commit must be undone: the current placement with the counters it has now
        var previous = batch.IsEmpty
            ? Placed
            : _placed.Values.Select(p => WithCounters(p.Source, CountersOf(TransitionPlanner.KeyOf(p.Source)))).ToList();
        if (!batch.IsEmpty)
            _socket.SendBatch(batch, commit: false, generation).ThrowIfFailed("validating the kernel placement");
        _pending = new PreparedTransition(batch, listed ?? desired, touched, generation, previous);
        return _pending;
    }

    /// <summary>Applies the prepared transition in one kernel transaction and learns the kernel's handles of the new rules.</summary>
    public void Commit()
    {
        var p = _pending ?? throw new InvalidOperationException("no prepared transition to commit");
        _pending = null;
        _settled.Reset();
        try
        {
            // echoed only while the notifications surely fit the socket's receive buffer beside the batch's acks: an overrun
            // would lose the acks too, and a committed batch would read as failed
            var deleted = EchoedRules(p.Batch) <= MaxEchoedRules ? new List<object>() : null;
            Deleted = null;
            if (!p.Batch.IsEmpty)
                _socket.SendBatch(p.Batch, commit: true, p.Generation, deleted: deleted).ThrowIfFailed("committing the kernel placement");
            Deleted = deleted == null ? null : FinalCounts(deleted);
            var next = new Dictionary<TableKey, PlacedTable>();
            foreach (var t in p.Desired)
            {
                var key = TransitionPlanner.KeyOf(t);
                // no rule got a new kernel handle, but deleted ones go: the caller asks whether the kernel holds a rule
                // (KernelRuleHandle) when its chain comes back to the kernel
                if (!p.Touched.Contains(key) && _placed.TryGetValue(key, out var old))
                    next[key] = old with { Source = t, KernelRuleHandles = Held(old.KernelRuleHandles, t) };
                else
                    next[key] = new PlacedTable(t, LearnHandles(key, t));
            }
            SetPlaced(next);
        }
        finally
        {
            _settled.Set();
        }
        _rollbackTo = p.PreviousWithCounters;
    }

    /// <summary>
    /// The counts of the rules and objects the last commit deleted (moved out of the kernel, or deleted with their table or
    /// chain), in the caller's rule handles, as the kernel's commit left them: nf_tables builds its DELRULE/DELOBJ
    /// notifications after the new generation went live, so nothing counts there any more but a packet already inside the
    /// old rules on another CPU. A rule or object whose notification did not come is not in it, and an object's holds no
    /// state (this kernel's DELOBJ dumps none). Null when the commit was not echoed (<see cref="MaxEchoedRules"/>).
    /// </summary>
    public KernelCounters? Deleted { get; private set; }

    /// <summary>
    /// The most rules and objects a commit's echoed deletions may name. nf_tables packs its notifications into skbs of
    /// about a page (nft_commit_notify), some 10 to 20 rules each: 4,096 stay within a few MiB of the 32 MiB buffer.
    /// </summary>
    public const int MaxEchoedRules = 4096;

    /// <summary>How many DELRULE/DELOBJ notifications <paramref name="batch"/>'s deletions make the kernel echo (a table's or chain's deletion: one per rule and object in it).</summary>
    int EchoedRules(KernelBatch batch)
    {
        int n = 0;
        foreach (var m in batch.Messages)
            n += m.Record switch
            {
                Table t when m.Type == NftMsgType.DelTable && _placed.TryGetValue(new TableKey(m.Family, t.Name ?? ""), out var placed) =>
                    placed.Source.Chains.Sum(c => c.Rules.Count) + (placed.Source.Objects?.Count ?? 0),
                Chain c when m.Type == NftMsgType.DelChain && _placed.TryGetValue(new TableKey(m.Family, c.Table ?? ""), out var placed) =>
                    placed.Source.FindChain(c.Name ?? "")?.Rules.Count ?? 0,
                _ when m.Type is NftMsgType.DelRule or NftMsgType.DelObj => 1,
                _ => 0,
            };
        return n;
    }

    /// <summary>The echoed deletions of a commit as <see cref="Deleted"/> holds them, by the placement before the commit.</summary>
    KernelCounters FinalCounts(List<object> deleted)
    {
        var rules = new List<RuleCounter>();
        var objects = new List<ObjectState>();
        static (byte Family, string? Table) TableOf(object d) => d switch { Rule r => (r.Family, r.Table), NftObject o => (o.Family, o.Table), _ => (0, null) };
        foreach (var g in deleted.GroupBy(TableOf))
        {
            if (g.Key.Table is not { } table || !_placed.TryGetValue(new TableKey(g.Key.Family, table), out var placed)) continue;
            var c = CountersOf(new TableKey(g.Key.Family, table), placed, g.OfType<Rule>(), g.OfType<NftObject>());
            rules.AddRange(c.Rules);
            objects.AddRange(c.Objects);
        }
        return new KernelCounters(rules, objects);
    }

    /// <summary>Forgets the prepared transition; the kernel never applied it.</summary>
    public void Abort() => _pending = null;

    /// <summary>
    /// Puts back what the kernel held before the last <see cref="Commit"/> (rules that commit removed
    /// come back with the counters they had when it was prepared). One level only.
    /// </summary>
    public void RollbackLastCommit()
    {
        var to = _rollbackTo ?? throw new InvalidOperationException("nothing to roll back");
        if (_pending != null) throw new InvalidOperationException("a transition is prepared: abort it before rolling back");
        // the tables as listed keep the engine's deadlines, not the time left Prepare sends a new set: the kernel gives the
        // elements of a set it makes again their whole timeout
        Prepare(to.Select(t => t with { Sets = t.Sets.Select(s => s with { Elements = s.Elements.Select(e => e with { Expiration = null }).ToList() }).ToList() }).ToList());
        Commit();
        _rollbackTo = null;
    }

    /// <summary>
    /// Deletes every table of the kernel's nf_tables except <paramref name="keep"/> and forgets the
    /// placement: for a daemon that starts in a namespace whose kernel ruleset it does not know.
    /// </summary>
    public void Reset(Func<TableKey, bool>? keep = null)
    {
        if (_pending != null) throw new InvalidOperationException("a transition is prepared: abort it first");
        var batch = new KernelBatch();
        foreach (var t in _socket.Dump<Table>(NftMsgType.GetTable, 0, new Table()))
        {
            var key = new TableKey(t.Family, t.Name!);
            if (keep?.Invoke(key) == true) continue;
            batch.Add(NftMsgType.DelTable, t.Family, new Table { Family = t.Family, Name = t.Name }, $"delete table {key}");
        }
        if (!batch.IsEmpty) _socket.SendBatch(batch, commit: true).ThrowIfFailed("clearing the kernel's nf_tables");
        SetPlaced([]);
        _rollbackTo = null;
    }

    /// <summary>
    /// Takes over what the kernel's nf_tables holds now, for a daemon that restarts with its state: each
    /// table of <paramref name="expected"/> the kernel holds with the same chains, sets and rule counts, or a
    /// part of them (<see cref="HeldPart"/>), is placed as it is (its rules keep their kernel handles and
    /// counters; the next transition adds what is missing and sends nothing for what is there). Every other kernel table is kept running but marked stale: the next
    /// transition deletes it, or recreates it, in the same kernel transaction as the rest. Nothing is
    /// sent to the kernel here. Returns how many tables were adopted and how many are stale.
    /// </summary>
    public (int Adopted, int Stale) Adopt(IReadOnlyList<SourceTable> expected)
    {
        if (_pending != null) throw new InvalidOperationException("a transition is prepared: abort it first");
        var want = expected.ToDictionary(TransitionPlanner.KeyOf);
        var next = new Dictionary<TableKey, PlacedTable>();
        int adopted = 0, stale = 0;
        foreach (var t in _socket.Dump<Table>(NftMsgType.GetTable, 0, new Table()))
        {
            var key = new TableKey(t.Family, t.Name!);
            // the conntrack switch's table is not placement's: it stays for as long as BPF reads ct
            if (t.Family == ConntrackSwitch.Family && t.Name == ConntrackSwitch.TableName) continue;
            var kernel = KernelRuleset.ReadTable(_socket, t);
            // what the state expects, or the part of it a commit the state did not see left (HeldPart)
            if (want.TryGetValue(key, out var d) && HeldPart.Of(kernel, d) is { } held)
            {
                try
                {
                    next[key] = new PlacedTable(held, LearnHandles(key, held));
                    adopted++;
                    continue;
                }
                catch (InvalidOperationException)
                {
                    // diverged: recreated by the next transition
                }
            }
            next[key] = new PlacedTable(kernel, new Dictionary<ulong, ulong>()) { Stale = true };
            stale++;
        }
        SetPlaced(next);
        _rollbackTo = null;
        return (adopted, stale);
    }

    /// <summary>The kernel handles of <paramref name="handles"/> whose rules <paramref name="t"/> still holds.</summary>
    static Dictionary<ulong, ulong> Held(IReadOnlyDictionary<ulong, ulong> handles, SourceTable t)
    {
        var rules = t.Chains.SelectMany(c => c.Rules).Select(r => r.Handle).OfType<ulong>().ToHashSet();
        return handles.Where(h => rules.Contains(h.Key)).ToDictionary(h => h.Key, h => h.Value);
    }

    Dictionary<ulong, ulong> LearnHandles(TableKey key, SourceTable t)
    {
        var kernel = KernelRuleset.ReadRules(_socket, key.Family, key.Name);
        var map = new Dictionary<ulong, ulong>();
        foreach (var c in t.Chains)
        {
            var inKernel = kernel.Where(r => r.Chain == c.Chain.Name).ToList();
            if (inKernel.Count != c.Rules.Count)
                throw new InvalidOperationException($"kernel placement diverged: chain {key} {c.Chain.Name} holds {inKernel.Count} rules in the kernel, {c.Rules.Count} desired");
            for (int i = 0; i < inKernel.Count; i++) map[c.Rules[i].Handle!.Value] = inKernel[i].Handle!.Value;
        }
        return map;
    }

    /// <summary>The elements the kernel holds in a placed named set (rules may have added them from the packet path).</summary>
    public IReadOnlyList<SetElement> Elements(byte family, string table, string set) =>
        _placed.ContainsKey(new TableKey(family, table))
            ? KernelRuleset.ReadElements(_socket, new Set { Family = family, Table = table, Name = set })
            : [];

    /// <summary>
    /// nft_quota's reset of a placed named quota, in the kernel's own copy (GETOBJ_RESET): the kernel takes back what it
    /// consumed as it reads it, so the quota lets packets through again as the kernel's own `nft reset quota` does. From
    /// then on the object counts from nothing: its start point (<see cref="ObjectState.QuotaStart"/>) becomes 0.
    /// False when no placed table holds such a quota.
    /// </summary>
    public bool ResetQuota(byte family, string table, string name)
    {
        var key = new TableKey(family, table);
        if (!_placed.TryGetValue(key, out var placed) || placed.Stale
            || placed.Source.Objects?.FirstOrDefault(o => o.Type == (uint)NftObjectType.Quota && o.Name == name) is not { Data: QuotaExpr q } obj) return false;
        _socket.Request(NftMsgType.GetObjReset, family, new NftObject { Table = table, Name = name, Type = obj.Type ?? (uint)NftObjectType.Quota });
        _placed[key] = placed with { Source = placed.Source.WithExpressions((_, _, _, _) => null, o => ReferenceEquals(o, obj) ? q with { Consumed = 0 } : null) };
        return true;
    }

    /// <summary>
    /// The kernel's rule reset (GETRULE_RESET) of the caller's rule <paramref name="ruleHandle"/>: its counters and quotas in
    /// the kernel's copy, as the kernel's own reset of a rule; each of its quotas counts from nothing then (its start point
    /// becomes 0). Returns the indexes of the rule's quota expressions, or null when no placed table holds the rule.
    /// </summary>
    public IReadOnlyList<int>? ResetRule(byte family, string table, ulong ruleHandle)
    {
        var key = new TableKey(family, table);
        if (!_placed.TryGetValue(key, out var placed) || placed.Stale || !placed.KernelRuleHandles.TryGetValue(ruleHandle, out var kernelHandle)) return null;
        var chain = placed.Source.Chains.FirstOrDefault(c => c.Rules.Any(r => r.Handle == ruleHandle));
        if (chain == null) return null;
        _socket.Request(NftMsgType.GetRuleReset, family, new Rule { Table = table, Chain = chain.Chain.Name, Handle = kernelHandle });
        var quotas = new List<int>();
        _placed[key] = placed with
        {
            Source = placed.Source.WithExpressions((c, r, i, e) =>
            {
                if (!ReferenceEquals(c, chain) || r.Handle != ruleHandle || e is not QuotaExpr q) return null;
                quotas.Add(i);
                return q with { Consumed = 0 };
            }),
        };
        return quotas;
    }

    /// <summary>Counters of every placed table, from GETRULE and GETOBJ dumps, in the caller's rule handles.</summary>
    public KernelCounters ReadCounters()
    {
        var rules = new List<RuleCounter>();
        var objects = new List<ObjectState>();
        foreach (var key in _placed.Keys)
        {
            var c = ReadCounters(key);
            rules.AddRange(c.Rules);
            objects.AddRange(c.Objects);
        }
        return new KernelCounters(rules, objects);
    }

    KernelCounters ReadCounters(TableKey key) => _placed.TryGetValue(key, out var placed)
        ? CountersOf(key, placed, KernelRuleset.ReadRules(_socket, key.Family, key.Name),
            _socket.Dump<NftObject>(NftMsgType.GetObj, key.Family, new NftObject { Table = key.Name }))
        : new KernelCounters([], []);

    /// <summary>
    /// The kernel's rules of placed table <paramref name="placed"/> that are ours, each with the caller's handle and the
    /// caller's expressions (null when the caller's table holds no such rule); others (cannot happen unless someone else
    /// writes here) are left out.
    /// </summary>
    static IEnumerable<(Rule Kernel, ulong Caller, IReadOnlyList<Expression>? Source)> Ours(PlacedTable placed, IEnumerable<Rule> kernelRules)
    {
        var byKernel = placed.KernelRuleHandles.ToDictionary(kv => kv.Value, kv => kv.Key);
        var sources = placed.Source.Chains.SelectMany(c => c.Rules).Where(r => r.Handle != null).ToDictionary(r => r.Handle!.Value);
        foreach (var r in kernelRules)
            if (r.Handle is { } kh && byKernel.TryGetValue(kh, out var emu))
                yield return (r, emu, sources.GetValueOrDefault(emu)?.Expressions);
    }

    /// <summary>The counters of the kernel's <paramref name="kernelRules"/> and <paramref name="kernelObjects"/> of placed table <paramref name="key"/>, in the caller's terms.</summary>
    static KernelCounters CountersOf(TableKey key, PlacedTable placed, IEnumerable<Rule> kernelRules, IEnumerable<NftObject> kernelObjects)
    {
        var rules = new List<RuleCounter>();
        foreach (var (r, emu, source) in Ours(placed, kernelRules))
        {
            var exprs = r.Expressions ?? [];
            var src = source ?? [];
            // the kernel's indexes shifted by the hidden `last` expressions, in the caller's
            var align = HiddenLast.Align(src, exprs);
            for (int k = 0; k < exprs.Count; k++)
            {
                var (i, hidden) = align[k];
                if (hidden || i < 0) continue;
                switch (exprs[k])
                {
                    case CounterExpr ce:
                        rules.Add(new RuleCounter(key.Family, key.Name, r.Chain!, emu, i, ce.Packets ?? 0, ce.Bytes ?? 0));
                        break;
                    case QuotaExpr qe:
                        // an anonymous quota: the bytes consumed since it was placed (the caller holds the `used` it was created with)
                        var start = i < src.Count && src[i] is QuotaExpr sq ? sq.Consumed ?? 0 : 0;
                        var consumed = qe.Consumed ?? 0;
                        rules.Add(new RuleCounter(key.Family, key.Name, r.Chain!, emu, i, 0, consumed >= start ? consumed - start : 0));
                        break;
                }
            }
        }
        var objects = kernelObjects
            .Where(o => o.Table == key.Name && o.Name != null)
            .Select(o => new ObjectState(key.Family, key.Name, o.Name!, o.Type ?? 0, o.Data,
                placed.Source.Objects?.FirstOrDefault(s => s.Type == o.Type && s.Name == o.Name)?.Data is QuotaExpr sq ? sq.Consumed ?? 0 : 0)).ToList();
        return new KernelCounters(rules, objects);
    }

    /// <summary>
    /// The hidden `last` expressions of every placed table (<see cref="HiddenLast"/>), each with the caller's rule and
    /// the expression it precedes: how long ago a packet last reached that expression (null: none since it was placed).
    /// </summary>
    public IReadOnlyList<LastReached> ReadLasts()
    {
        var lasts = new List<LastReached>();
        foreach (var (key, placed) in _placed)
        {
            if (placed.Stale) continue;
            foreach (var (r, emu, source) in Ours(placed, KernelRuleset.ReadRules(_socket, key.Family, key.Name)))
            {
                if (source is not { } src) continue;
                var exprs = r.Expressions ?? [];
                var align = HiddenLast.Align(src, exprs);
                for (int k = 0; k < exprs.Count; k++)
                    if (align[k] is (var i, true) && exprs[k] is LastExpr last && i >= 0)
                        lasts.Add(new LastReached(key.Family, key.Name, r.Chain!, emu, i, src[i], last.Set is > 0 ? last.Msecs ?? 0 : null));
                    else if (align[k] is (var j, false) && j >= 0 && HiddenLast.Precedes(src[j]) && !(k > 0 && align[k - 1] == (j, true)))
                        lasts.Add(new LastReached(key.Family, key.Name, r.Chain!, emu, j, src[j], null, Unwatched: true));
            }
        }
        return lasts;
    }

    /// <summary>The caller's table with its counter expressions and object states replaced by the kernel's current values.</summary>
    static SourceTable WithCounters(SourceTable t, KernelCounters c)
    {
        var key = TransitionPlanner.KeyOf(t);
        return t.WithExpressions(
            (_, r, i, e) => e is CounterExpr && r.Handle is { } h && c.Rule(key.Family, key.Name, h, i) is { } rc ? new CounterExpr(rc.Bytes, rc.Packets) : null,
            o => c.Object(key.Family, key.Name, o.Type ?? 0, o.Name!)?.Data);
    }
}
