using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;
using Nft.Kernel;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Where every base chain of a proposed ruleset runs, and what each side then holds: the IR ruleset
/// for BPF (the lifted base chains placed there, with the regular chains and sets they reach) and the
/// tables for the kernel (each table cut down to its kernel-placed base chains and what they reach).
/// <see cref="BpfChains"/> and <see cref="KernelChains"/> name every nf_tables chain each side runs
/// (a regular chain reached from both sides runs, and counts, on both).
/// </summary>
public sealed class PlacementPlan
{
    public required IReadOnlyList<ChainPlacement> Chains { get; init; }
    public required Ruleset BpfRuleset { get; init; }
    public required IReadOnlyList<SourceTable> KernelTables { get; init; }
    public required IReadOnlySet<ChainId> BpfChains { get; init; }
    public required IReadOnlySet<ChainId> KernelChains { get; init; }
    /// <summary>Sets the kernel holds (an element change to one of them goes through the kernel too).</summary>
    public required IReadOnlySet<(byte Family, string Table, string Set)> KernelSets { get; init; }
    /// <summary>
    /// Sets kernel-placed rules write from the packet path, and kernel-held sets whose elements carry statements
    /// (per-element counters): their elements, with their state, are the kernel's.
    /// </summary>
    public required IReadOnlySet<(byte Family, string Table, string Set)> KernelWrittenSets { get; init; }

    /// <summary>The same placement with <paramref name="tables"/> for the kernel (the same chains and sets, fewer objects).</summary>
    public PlacementPlan WithKernelTables(IReadOnlyList<SourceTable> tables) => new()
    {
        Chains = Chains, BpfRuleset = BpfRuleset, KernelTables = tables, BpfChains = BpfChains, KernelChains = KernelChains,
        KernelSets = KernelSets, KernelWrittenSets = KernelWrittenSets,
    };

    public IEnumerable<ChainPlacement> InKernel => Chains.Where(c => c.Side == PlacementSide.Kernel);

    /// <summary>Base chains, and regular chains reached from them, on the kernel side, counting rules.</summary>
    public int KernelRuleCount(IReadOnlyList<SourceTable> tables) => CountRules(tables, KernelChains);

    public int BpfRuleCount(IReadOnlyList<SourceTable> tables) => CountRules(tables, BpfChains);

    static int CountRules(IReadOnlyList<SourceTable> tables, IReadOnlySet<ChainId> chains) =>
        tables.SelectMany(t => t.Chains.Where(c => chains.Contains(new ChainId(t.Family, t.Name, c.Name)))).Sum(c => c.Rules.Count);

    /// <summary>
    /// Places every base chain of the non-dormant tables. A chain that lifted goes to BPF unless it is in
    /// <paramref name="forcedKernel"/> (BPF could not load or attach it) or an ordering rule moves it:
    /// <list type="bullet">
    /// <item>a BPF_NETFILTER link cannot share a priority with a kernel chain on the same hook list
    /// (EBUSY, and a kernel chain registered later would jump ahead of it);</item>
    /// <item>XDP/tcx at a device's ingress runs before every nf_tables ingress chain, at egress after:
    /// a BPF chain that must run after (before) a kernel chain there goes to the kernel too;</item>
    /// <item>a set written from the packet path by a kernel chain is read where it is written;</item>
    /// <item>while a kernel chain sets <c>meta nftrace</c>, every base chain runs in the kernel: a traced
    /// packet may reach any of them later, and only the kernel's chains emit trace events.</item>
    /// </list>
    /// </summary>
    /// <param name="facts">
    /// Each chain's facts from the previous placement, folded further over the rules appended since (null: every
    /// chain walked from its start). The plan is the same either way.
    /// </param>
    /// <param name="kernelHeld">
    /// Sets that stay in the kernel, each with why (elements whose state BPF cannot be given): every chain that reads
    /// or writes one stays there too.
    /// </param>
    /// <param name="kernelKept">
    /// Chains that stay in the kernel, each with why (limits whose bucket in the kernel's copy is not known full,
    /// <see cref="KernelLimitIdle"/>).
    /// </param>
    /// <param name="movedLinks">
    /// The BPF_NETFILTER links that run at a priority next to their chains' own (moved back from the kernel, see
    /// <see cref="MoveBackPriorities"/>), keyed by <see cref="Bpfilter.Backend.Ir.NetfilterHook.AttachPoint"/>: a kernel chain
    /// at that priority on the same hook list conflicts as one at the chain's own would.
    /// </param>
    /// <param name="kernelLimits">
    /// The limit objects the kernel's copy holds now: each stays there while its table holds it and no BPF chain names it
    /// (<see cref="KernelKeptLimits"/>).
    /// </param>
    public static PlacementPlan Build(IReadOnlyList<SourceTable> tables, LiftResult lift, IReadOnlySet<ChainId> forcedKernel,
        PlacementFacts? facts = null, IReadOnlyDictionary<(byte Family, string Table, string Set), string>? kernelHeld = null,
        IReadOnlyDictionary<string, int>? movedLinks = null, IReadOnlyDictionary<ChainId, string>? kernelKept = null,
        IReadOnlySet<(byte, string, string)>? kernelLimits = null)
    {
        var results = new Dictionary<ChainId, ChainLift>();
        foreach (var r in lift.Chains) results[r.Chain] = r;
        var entries = new List<Entry>();
        facts?.BeginPlacement();
        foreach (var t in tables)
        {
            if ((t.Table.TableFlags & Nft.Bytecode.NftTableFlags.Dormant) != 0) continue; // registers no hook
            // a table-level refusal (e.g. a flowtable) leaves its base chains without a result of their own
            var tableRefusal = lift.Refusals.FirstOrDefault(r => r.Family == t.Family && r.Table == t.Name && r.Chain == null);
            var index = facts != null && t.Chains.Any(c => c.IsBase) ? TableIndex.Of(t) : null;
            foreach (var c in t.Chains.Where(c => c.IsBase))
            {
                var id = new ChainId(t.Family, t.Name, c.Name);
                var e = (index != null ? FromFacts(t, c, id, index, facts!) : null) ?? Walked(t, c, id);
                (e.Side, e.Reason, e.Refusal) = results.GetValueOrDefault(id) switch
                {
                    ChainLift.Lifted when forcedKernel.Contains(id) => (PlacementSide.Kernel, "BPF could not load or attach it (see the log)", null),
                    ChainLift.Lifted when Held(t, e.Reads, kernelHeld) is { } why => (PlacementSide.Kernel, why, null),
                    ChainLift.Lifted when kernelKept?.GetValueOrDefault(id) is { } kept => (PlacementSide.Kernel, kept, null),
                    ChainLift.Lifted when Unreadable(t, e.Writes, lift) is { } why => (PlacementSide.Kernel, why, null),
                    ChainLift.Lifted => (PlacementSide.Bpf, "", null),
                    ChainLift.Refused r => (PlacementSide.Kernel, r.Refusal.Message, r.Refusal),
                    _ => (PlacementSide.Kernel, tableRefusal?.Message ?? "not lifted", tableRefusal),
                };
                entries.Add(e);
            }
        }
        facts?.EndPlacement();
        Settle(entries, movedLinks ?? new Dictionary<string, int>());
        return Assemble(tables, entries, results, kernelLimits ?? new HashSet<(byte, string, string)>());
    }

    /// <summary>Moves BPF chains to the kernel until no ordering or set rule is broken.</summary>
    static void Settle(List<Entry> entries, IReadOnlyDictionary<string, int> movedLinks)
    {
        bool changed = true;
        while (changed)
        {
            changed = false;
            var kernel = entries.Where(e => e.Side == PlacementSide.Kernel).ToList();
            foreach (var e in entries.Where(e => e.Side == PlacementSide.Bpf).ToList())
            {
                if (Conflict(e, kernel, movedLinks) is not { } why) continue;
                e.Side = PlacementSide.Kernel;
                e.Reason = why;
                changed = true;
                kernel.Add(e);
            }
        }
    }

    static string? Conflict(Entry e, List<Entry> kernel, IReadOnlyDictionary<string, int> movedLinks)
    {
        foreach (var k in kernel)
        {
            foreach (var s in e.Slots)
            {
                if (!k.Slots.Contains(s)) continue;
                if (!s.IsDevice && k.Priority == e.Priority)
                    return $"it has priority {e.Priority} on the same hook as kernel-placed {k.Id}, which a BPF_NETFILTER link cannot share";
                if (!s.IsDevice && LinkPriority(s, e.Priority, movedLinks) == k.Priority)
                    return $"its BPF_NETFILTER link runs at priority {k.Priority} (next to its own, since it moved back from the kernel), " +
                        $"which kernel-placed {k.Id} takes on the same hook";
                if (s.IsDevice && s.IsIngress && e.Priority >= k.Priority)
                    return $"at {s.Device} ingress it must run after kernel-placed {k.Id} (priority {k.Priority}), and XDP/tc runs before nf_tables there";
                if (s.IsDevice && !s.IsIngress && e.Priority <= k.Priority)
                    return $"at {s.Device} egress it must run before kernel-placed {k.Id} (priority {k.Priority}), and tc runs after nf_tables there";
            }
            if (k.Table == e.Table && e.Reads.FirstOrDefault(k.Writes.Contains) is { } set)
                return $"it reads set {set}, which kernel-placed {k.Id} updates from the packet path";
            if (k.Table == e.Table && e.Writes.FirstOrDefault(k.Reads.Contains) is { } read)
                return $"it updates set {read} from the packet path, which kernel-placed {k.Id} reads";
            // BPF cannot emit the kernel's trace events (nor set skb->nf_trace): a packet kernel-placed k traces
            // may reach any base chain afterwards (a later hook, this one's later priorities, egress, lo's ingress)
            if (k.SetsNfTrace)
                return $"kernel-placed {k.Id} sets meta nftrace, and only the kernel's chains trace the packets it marks";
            if (k.Table == e.Table && e.States.FirstOrDefault(k.States.Contains) is { } state)
                return $"it shares {state} with kernel-placed {k.Id}, and one stateful object's state cannot be split between BPF and the kernel";
        }
        return null;
    }

    /// <summary>The priority a BPF chain's link at <paramref name="slot"/> runs at when it is not the chain's own; else null.</summary>
    static int? LinkPriority(HookSlot slot, int priority, IReadOnlyDictionary<string, int> movedLinks)
    {
        if (movedLinks.Count == 0 || slot.Family is not (Nft.Bytecode.NfProto.Ipv4 or Nft.Bytecode.NfProto.Ipv6)) return null;
        var family = slot.Family == Nft.Bytecode.NfProto.Ipv4 ? NfFamily.Ipv4 : NfFamily.Ipv6;
        return movedLinks.TryGetValue(new NetfilterHook(family, (NfHookPoint)slot.Hook, priority).AttachPoint, out var at) ? at : null;
    }

    /// <summary>
    /// The state the chains of <paramref name="reach"/> keep beyond a rule's own counter: anonymous quotas
    /// (a regular chain reached from two base chains holds one), the named objects their rules name, and the
    /// element counters of the sets they look up. An
    /// object map may name any object of its type in <paramref name="table"/> (an element-only change can
    /// name another one without a new placement), so it holds them all.
    /// </summary>
    static HashSet<string> StatefulStates(SourceTable table, SourceTable reach)
    {
        var states = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in reach.Chains)
            foreach (var r in c.Rules)
                for (int i = 0; i < (r.Expressions?.Count ?? 0); i++)
                    switch (r.Expressions![i])
                    {
                        case QuotaExpr: states.Add($"the quota of chain {c.Name} handle {r.Handle} (expression {i})"); break;
                        case LimitExpr: states.Add($"the limit of chain {c.Name} handle {r.Handle} (expression {i})"); break;
                        case ObjRefExpr { IsMap: false, ImmType: var type, ImmName: { } n }:
                            states.Add($"{Nft.Bytecode.Objects.NftObject.KindOf(type ?? 0)} {n}");
                            break;
                        // element statements run where the set is looked up: all of them in BPF, or all in the kernel
                        case LookupExpr { Set: var n } when reach.FindSet(n) is { } set && HasElementStatements(set):
                            states.Add($"the element statements (counters, quotas, limits) of set {n}");
                            break;
                        case ObjRefExpr { IsMap: true, SetName: { } m } when reach.FindSet(m) is { } map:
                            foreach (var o in table.Objects ?? [])
                                if (o.Type == map.Set.ObjType) states.Add($"{Nft.Bytecode.Objects.NftObject.KindOf(o.Type ?? 0)} {o.Name}");
                            break;
                    }
        return states;
    }

    /// <summary>The set's elements carry statements (NFTA_SET_EXPR(ESSIONS) gives them to every element added).</summary>
    static bool HasElementStatements(SourceSet set) =>
        set.Set.Expr != null || set.Set.Expressions is { Count: > 0 } || set.Elements.Any(e => e.Expr != null || e.Expressions is { Count: > 0 });

    static PlacementPlan Assemble(IReadOnlyList<SourceTable> tables, List<Entry> entries, Dictionary<ChainId, ChainLift> results,
        IReadOnlySet<(byte, string, string)> kernelLimits)
    {
        var baseChains = new List<BaseChain>();
        var chains = new Dictionary<string, Chain>();
        var sets = new Dictionary<string, Bpfilter.Backend.Ir.Set>();
        var bpfChains = new HashSet<ChainId>();
        var kernelChains = new HashSet<ChainId>();
        var kernelSets = new HashSet<(byte, string, string)>();
        var written = new HashSet<(byte, string, string)>();
        foreach (var e in entries.Where(e => e.Side == PlacementSide.Bpf))
        {
            var lifted = (ChainLift.Lifted)results[e.Id];
            baseChains.AddRange(lifted.BaseChains);
            foreach (var c in lifted.Reached) chains.TryAdd(c.Name, c);
            foreach (var s in lifted.Sets) sets.TryAdd(s.Name, s);
            foreach (var c in e.Reach.Chains) bpfChains.Add(new ChainId(e.Table.Family, e.Table.Name, c.Name));
        }
        var kernelTables = new List<SourceTable>();
        foreach (var t in tables)
        {
            var names = entries.Where(e => e.Side == PlacementSide.Kernel && e.Table == t).Select(e => e.Chain.Name).ToList();
            var bpfReach = entries.Where(e => e.Side == PlacementSide.Bpf && e.Table == t).Select(e => e.Reach);
            if (KernelKeptLimits.Into(t, names.Count == 0 ? null : KernelSubset.For(t, names), kernelLimits, bpfReach) is not { } subset) continue;
            foreach (var c in subset.Chains) kernelChains.Add(new ChainId(t.Family, t.Name, c.Name));
            foreach (var s in subset.Sets) kernelSets.Add((t.Family, t.Name, s.Name));
            foreach (var s in Writes(subset)) written.Add((t.Family, t.Name, s));
            // the kernel counts the elements of the sets it holds: listings show its counters
            foreach (var s in subset.Sets.Where(HasElementStatements)) written.Add((t.Family, t.Name, s.Name));
            kernelTables.Add(StartCounting(subset));
        }
        return new PlacementPlan
        {
            Chains = entries.Select(e => new ChainPlacement(e.Id, e.Side, e.Reason, e.Refusal)).ToList(),
            BpfRuleset = new Ruleset(baseChains.ToValueList(), chains.Values.ToValueList(), sets.Values.ToValueList()),
            KernelTables = kernelTables,
            BpfChains = bpfChains,
            KernelChains = kernelChains,
            KernelSets = kernelSets,
            KernelWrittenSets = written,
        };
    }

    /// <summary>
    /// The kernel counts from zero: what a rule's counter showed before (the value nft gave, kept by the
    /// emulation) is added to the kernel's count when nft lists it.
    /// </summary>
    static SourceTable StartCounting(SourceTable t) => t with
    {
        Chains = t.Chains.Select(c => c with
        {
            Rules = c.Rules.Select(r => r.Expressions is { } x && x.Any(e => e is CounterExpr)
                ? r with { Expressions = x.Select(Zero).ToList() }
                : r).ToList(),
        }).ToList(),
        Objects = t.Objects?.Select(o => o.Data is CounterExpr ? o with { Data = Zero(o.Data) } : o).ToList(),
    };

    static Expression Zero(Expression e) => e is CounterExpr c ? c with { Packets = 0, Bytes = 0 } : e;

    /// <summary>Whether a rule the chain reaches sets skb->nf_trace (`meta nftrace set`), which BPF cannot.</summary>
    // plain loops, not LINQ: every commit runs these over every expression of the ruleset
    static bool SetsNfTrace(SourceTable reach)
    {
        foreach (var c in reach.Chains)
            foreach (var r in c.Rules)
                foreach (var e in r.Expressions ?? [])
                    if (e is MetaExpr { IsSet: true, Key: MetaExpr.KeyNfTrace }) return true;
        return false;
    }

    /// <summary>
    /// Why a chain that updates sets from the packet path (dynset) stays in the kernel although the BPF backend
    /// compiles it: bpfilterd lists, deletes and counts the elements BPF adds by reading the set's map back, which
    /// needs the nft key of every map key (no masked or shifted key operand, see SetEncoder.RegisterKey).
    /// </summary>
    static string? Unreadable(SourceTable t, HashSet<string> sets, LiftResult lift)
    {
        foreach (var s in sets.Order(StringComparer.Ordinal))
            if (!lift.SetEncoders.TryGetValue((t.Family, t.Name, s), out var encoder))
                return $"it updates set {s} from the packet path, and the lift kept no encoder to read its elements back";
            else if (!encoder.KeysReadBack)
                return $"it updates set {s} from the packet path with a masked or shifted key, whose nft key bpfilterd cannot read back from the map";
        return null;
    }

    /// <summary>Why the chain stays in the kernel with a set it reaches that must (<see cref="Build"/>'s kernelHeld).</summary>
    static string? Held(SourceTable t, HashSet<string> sets, IReadOnlyDictionary<(byte, string, string), string>? held)
    {
        if (held == null || held.Count == 0) return null;
        foreach (var s in sets.Order(StringComparer.Ordinal))
            if (held.TryGetValue((t.Family, t.Name, s), out var why)) return $"it reaches set {s}, {why}";
        return null;
    }

    /// <summary>A base chain's entry from walking every rule of every chain it reaches.</summary>
    static Entry Walked(SourceTable t, SourceChain c, ChainId id)
    {
        var reach = KernelSubset.For(t, [c.Name]);
        return new Entry(t, c, id, HookSlot.Of(t.Family, c.Chain), c.Chain.Hook!.Priority ?? 0, reach,
            Writes(reach), reach.Sets.Select(s => s.Name).ToHashSet(), SetsNfTrace(reach), StatefulStates(t, reach));
    }

    /// <summary>
    /// The same entry as <see cref="Walked"/>, from the facts of the chains it reaches; null when a reference does not
    /// resolve (the walk then raises the error that names it).
    /// </summary>
    static Entry? FromFacts(SourceTable t, SourceChain c, ChainId id, TableIndex index, PlacementFacts facts)
    {
        if (!index.Unique) return null;
        // KernelSubset.For's closure, over each chain's facts instead of its expressions
        var needChains = new Dictionary<string, ChainFacts>(StringComparer.Ordinal);
        var needSets = new HashSet<string>(StringComparer.Ordinal);
        var needObjects = new HashSet<(uint, string)>();
        var needFlowtables = new HashSet<string>(StringComparer.Ordinal);
        var work = new Queue<SourceChain>();
        bool Chain(string name)
        {
            if (!index.Chains.TryGetValue(name, out var chain)) return false;
            if (!needChains.ContainsKey(name))
            {
                needChains[name] = facts.Of(t, chain);
                work.Enqueue(chain);
            }
            return true;
        }
        bool Set(string name)
        {
            if (!index.Sets.TryGetValue(name, out var s)) return false;
            if (!needSets.Add(name)) return true;
            foreach (var el in s.Elements)
            {
                if (el.Data is Nft.Bytecode.Data.VerdictData { Verdict: { IsJumpOrGoto: true, Chain: { } target } } && !Chain(target)) return false;
                if (el.ObjRef is { } obj && !Object(s.Set.ObjType ?? 0, obj)) return false;
            }
            return true;
        }
        bool Object(uint type, string name)
        {
            if (!index.Objects.Contains((type, name))) return false;
            needObjects.Add((type, name));
            return true;
        }
        if (!Chain(c.Name)) return null;
        while (work.TryDequeue(out var next))
        {
            var f = needChains[next.Name];
            foreach (var j in f.Jumps) if (!Chain(j)) return null;
            foreach (var s in f.Sets) if (!Set(s)) return null;
            foreach (var (type, name) in f.Objects) if (!Object(type, name)) return null;
            foreach (var ft in f.Flowtables)
                if (index.Flowtables.Contains(ft)) needFlowtables.Add(ft);
                else return null;
        }
        var reach = t with
        {
            Chains = t.Chains.Where(x => needChains.ContainsKey(x.Chain.Name!)).ToList(),
            Sets = t.Sets.Where(s => needSets.Contains(s.Set.Name!)).ToList(),
            Objects = t.Objects?.Where(o => needObjects.Contains((o.Type ?? 0, o.Name!))).ToList(),
            Flowtables = t.Flowtables?.Where(x => needFlowtables.Contains(x.Name!)).ToList(),
        };
        // Writes, SetsNfTrace and StatefulStates: the chains' facts in reach order, each item where the walk meets it first
        var writes = new HashSet<string>();
        var states = new HashSet<string>(StringComparer.Ordinal);
        bool nfTrace = false;
        foreach (var rc in reach.Chains)
        {
            var f = needChains[rc.Name];
            foreach (var w in f.Writes) writes.Add(w);
            nfTrace |= f.SetsNfTrace;
            foreach (var st in f.States)
                switch (st.Kind)
                {
                    case ChainFacts.StateKind.Literal: states.Add(st.Text); break;
                    case ChainFacts.StateKind.LookupSet when reach.FindSet(st.Text) is { } set && HasElementStatements(set):
                        states.Add($"the element statements (counters, quotas, limits) of set {st.Text}");
                        break;
                    case ChainFacts.StateKind.ObjectMap when reach.FindSet(st.Text) is { } map:
                        foreach (var o in t.Objects ?? [])
                            if (o.Type == map.Set.ObjType) states.Add($"{Nft.Bytecode.Objects.NftObject.KindOf(o.Type ?? 0)} {o.Name}");
                        break;
                }
        }
        return new Entry(t, c, id, HookSlot.Of(t.Family, c.Chain), c.Chain.Hook!.Priority ?? 0, reach,
            writes, reach.Sets.Select(s => s.Name).ToHashSet(), nfTrace, states);
    }

    /// <summary>A table's chains, sets, objects and flowtables by name; <see cref="Unique"/> false when a name repeats.</summary>
    sealed record TableIndex(Dictionary<string, SourceChain> Chains, Dictionary<string, SourceSet> Sets, HashSet<(uint, string)> Objects,
        HashSet<string> Flowtables, bool Unique)
    {
        public static TableIndex Of(SourceTable t)
        {
            bool unique = true;
            var chains = new Dictionary<string, SourceChain>(StringComparer.Ordinal);
            foreach (var c in t.Chains) unique &= c.Chain.Name is { } n && chains.TryAdd(n, c);
            var sets = new Dictionary<string, SourceSet>(StringComparer.Ordinal);
            foreach (var s in t.Sets) unique &= s.Set.Name is { } n && sets.TryAdd(n, s);
            var objects = new HashSet<(uint, string)>();
            foreach (var o in t.Objects ?? []) unique &= o.Name is { } n && objects.Add((o.Type ?? 0, n));
            var flowtables = new HashSet<string>(StringComparer.Ordinal);
            foreach (var f in t.Flowtables ?? []) unique &= f.Name is { } n && flowtables.Add(n);
            return new TableIndex(chains, sets, objects, flowtables, unique);
        }
    }

    static HashSet<string> Writes(SourceTable reach)
    {
        var sets = new HashSet<string>();
        foreach (var c in reach.Chains)
            foreach (var r in c.Rules)
                foreach (var e in r.Expressions ?? [])
                    if (e is DynsetExpr d) sets.Add(d.SetName);
        return sets;
    }

    sealed class Entry(SourceTable table, SourceChain chain, ChainId id, IReadOnlyList<HookSlot> slots, int priority,
        SourceTable reach, HashSet<string> writes, HashSet<string> reads, bool setsNfTrace, HashSet<string> states)
    {
        public SourceTable Table { get; } = table;
        public SourceChain Chain { get; } = chain;
        public ChainId Id { get; } = id;
        public IReadOnlyList<HookSlot> Slots { get; } = slots;
        public int Priority { get; } = priority;
        public SourceTable Reach { get; } = reach;
        public HashSet<string> Writes { get; } = writes;
        public HashSet<string> Reads { get; } = reads;
        public bool SetsNfTrace { get; } = setsNfTrace;
        /// <summary>The stateful objects its chains use: named objects, and anonymous quotas and limits of the chains it reaches.</summary>
        public HashSet<string> States { get; } = states;
        public PlacementSide Side { get; set; }
        public string Reason { get; set; } = "";
        public LiftRefusal? Refusal { get; set; }
    }
}
