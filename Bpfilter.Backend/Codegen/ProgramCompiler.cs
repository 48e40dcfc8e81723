using System.Collections.Immutable;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Lowering;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Compiles the base chains of one attach point (in priority order) into one program: prologue
/// (parsing only what the rules use), one block per rule that falls to the next rule on the first
/// failing matcher, counters in a per-CPU array, sets as maps, regular chains as subprograms called at
/// each jump/goto with nf_tables semantics (see <c>ProgramCompiler.Subprograms.cs</c>), the policy after the last rule. Accept in one base chain
/// continues with the next base chain; drop ends everything.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>nf_tables' jump stack depth (NFT_JUMP_STACK_SIZE).</summary>
    public const int MaxJumpDepth = 16;

    private const string AcceptLabel = "accept";
    private const string DropLabel = "drop";

    private readonly Ruleset _ruleset;
    private readonly IFlavor _flavor;
    /// <summary>The segment being emitted (see <c>ProgramCompiler.Segments.cs</c>).</summary>
    private Assembler _asm = new(dropUnreachable: true);
    private readonly Dictionary<ulong, int> _counterSlots = new();
    /// <summary>Slots counter ids held in the program compiled before (kept), and the first slot free for new ids.</summary>
    private readonly CounterLayout? _counterHint;
    private int _nextCounterSlot;
    /// <summary>Counters of rules that never run here: they get slots (reading zero) after all the others.</summary>
    private readonly List<ulong> _idleCounters = new();
    private readonly Dictionary<string, SetLayout> _sets = new(StringComparer.Ordinal);
    /// <summary>The log statements emitted so far, by config id (1, 2, ...).</summary>
    private readonly Dictionary<uint, Log.LogConfig> _logs = new();
    private int? _currentNfProto;
    /// <summary>The rejects jumped to so far: each gets one routine after the program's exits.</summary>
    private readonly List<RejectVerdict> _rejects = new();
    /// <summary>Some quota statement was emitted: the program references the shared quota map.</summary>
    private bool _usesQuotas;
    /// <summary>Some limit statement was emitted: the program references the shared limit map.</summary>
    private bool _usesLimits;

    private ProgramCompiler(Ruleset ruleset, IFlavor flavor, CounterLayout? counters, int segmentInstructions, int segmentBranches,
        bool inlineRegularChains, bool staticSubprograms)
    {
        _inlineRegularChains = inlineRegularChains;
        _staticSubprogramsOnly = staticSubprograms;
        _ruleset = ruleset;
        _flavor = flavor;
        _counterHint = counters;
        if (counters != null) _nextCounterSlot = Math.Max(counters.Next, counters.Slots.Count == 0 ? 0 : counters.Slots.Values.Max() + 1);
        _segmentInstructions = segmentInstructions;
        _segmentBranches = segmentBranches;
    }

    /// <summary>
    /// Compiles base chains sharing one attach point. For an inet netfilter chain pass
    /// <paramref name="ipv6"/> to choose which of its two programs to build. The chains (with the
    /// regular chains and sets of <paramref name="ruleset"/>) go through <paramref name="lowering"/>
    /// (default: <see cref="LoweringPipeline.Default"/>) before instructions are emitted. With
    /// <paramref name="counters"/> (the layout of the program running at the attach point) every counter id
    /// keeps its slot and new ids take slots no counter held (see <see cref="CounterLayout"/>). Past
    /// <paramref name="segmentInstructions"/> instructions or <paramref name="segmentBranches"/> conditional jumps the
    /// program is split into segments chained by tail calls (int.MaxValue for both: never split, as benchmarks compare).
    /// Regular chains are subprograms called at each jump/goto; <paramref name="inlineRegularChains"/> inlines them at
    /// every jump instead (the former code generation, which tests and benchmarks compare against), and
    /// <paramref name="staticSubprograms"/> keeps every subprogram static (no global functions, no BTF: the form before them).
    /// With <paramref name="classIds"/> (the running program's class maps) classifier classes keep their ids: only entries differ.
    /// </summary>
    public static CompiledProgram Compile(Ruleset ruleset, IReadOnlyList<BaseChain> chains, bool ipv6 = false,
        LoweringPipeline? lowering = null, CounterLayout? counters = null,
        int segmentInstructions = DefaultSegmentInstructions, int segmentBranches = SegmentBranches, bool inlineRegularChains = false,
        bool staticSubprograms = false, ClassIdHint? classIds = null)
    {
        if (chains.Count == 0) throw new ArgumentException("no base chains to compile");
        // the source rules of each base chain: a chain tail holds the ones appended past them
        var sourceRules = chains.ToDictionary(c => c.Name, c => c.Rules.Count);
        ruleset = (lowering ?? LoweringPipeline.Default).Run(ruleset with { BaseChains = chains.ToValueList() });
        chains = ruleset.BaseChains;
        var hook = chains[0].Hook;
        if (chains.Any(c => c.Hook.AttachPoint != hook.AttachPoint))
            throw new CodegenException("base chains compiled together must share one attach point");
        var flavor = FlavorOf(hook, ipv6);
        // subprograms read the base program's dynptr: only without regular chains may it be made on demand
        if (flavor is NetfilterFlavor nf) nf.DynptrOnDemand = ruleset.Chains.Count == 0;
        var ordered = Enforcement.AttachUnit.RunOrder(chains);
        var compiler = new ProgramCompiler(ruleset, flavor, counters, segmentInstructions, segmentBranches, inlineRegularChains, staticSubprograms);
        if (classIds != null) compiler._classifiers = new ClassifierTables(classIds);
        var segments = compiler.Emit(ordered, sourceRules);
        var name = hook switch { XdpIngress => "bf_xdp", TcIngress => "bf_tc_in", TcEgress => "bf_tc_out", _ => ipv6 ? "bf_nf6" : "bf_nf4" };
        return new CompiledProgram(name, flavor.ProgramType, flavor.AttachType, segments[0], compiler.MapSpecs(ordered.Count),
            compiler._counterSlots, flavor.AcceptCode, flavor.DropCode)
        {
            CounterSlotsUsed = compiler._nextCounterSlot,
            SetLayouts = compiler._sets,
            LogConfigs = compiler._logs,
            PathOrder = PathOrderOf(hook),
            Segments = segments.RemoveAt(0),
            TailCallSlots = compiler._tailCallSlots,
            Functions = compiler.Functions(),
            Classifiers = compiler._classifierRecords,
            ClassifierLayouts = compiler._classifierLayouts,
            Tail = compiler._tail is { } tail ? tail with { MainCounters = compiler._counterSlots } : null,
        };
    }

    static IFlavor FlavorOf(Hook hook, bool ipv6) => hook switch
    {
        XdpIngress x => new XdpFlavor(x.Device, x.IpOnly),
        TcIngress t => new TcFlavor(t.Device, ingress: true, t.IpOnly),
        TcEgress t => new TcFlavor(t.Device, ingress: false, t.IpOnly),
        NetfilterHook n when n.Family == NfFamily.Ipv4 && ipv6 => throw new CodegenException("an ipv4 chain has no ipv6 program"),
        NetfilterHook n when n.Family == NfFamily.Ipv6 => new NetfilterFlavor(ipv6: true, n.Point, SkbDataRead.Available),
        NetfilterHook n => new NetfilterFlavor(ipv6, n.Point, SkbDataRead.Available),
        _ => throw new CodegenException($"unsupported hook {hook}"),
    };

    /// <summary>
    /// The one network protocol (ethertype) the program of <paramref name="hook"/> (<paramref name="ipv6"/>: an inet
    /// chain's ipv6 program) ever sees, as the compiler decides it: a rule reading another's header has no code there.
    /// Null when it sees more than one, or there is no such program.
    /// </summary>
    internal static int? FixedEtherTypeOf(Hook hook, bool ipv6) =>
        hook is NetfilterHook { Family: NfFamily.Ipv4 } && ipv6 ? null
        : hook is NetfilterHook n ? new NetfilterFlavor(ipv6 || n.Family == NfFamily.Ipv6, n.Point, directRead: false).FixedEtherType
        : null;

    /// <summary>Where a packet meets this hook on its way (device ingress, netfilter hooks, device egress), then the priority.</summary>
    static (int Stage, int Priority) PathOrderOf(Hook hook) => hook switch
    {
        XdpIngress => (0, 0),
        TcIngress => (1, 0),
        NetfilterHook { Point: NfHookPoint.Prerouting } n => (2, n.Priority),
        NetfilterHook { Point: NfHookPoint.Input or NfHookPoint.Forward } n => (3, n.Priority),
        NetfilterHook { Point: NfHookPoint.Output } n => (4, n.Priority),
        NetfilterHook n => (5, n.Priority),
        _ => (6, 0),
    };

    /// <summary>The program's segments: the first is attached, the others are tail-call targets (one unless the rules are many).</summary>
    private ImmutableArray<ImmutableArray<Instruction>> Emit(List<BaseChain> chains, IReadOnlyDictionary<string, int> sourceRules)
    {
        _needs = Analyze(chains);
        EmitPrologue();

        for (var i = 0; i < chains.Count; i++)
        {
            var chain = chains[i];
            var next = i + 1 < chains.Count ? $"chain{i + 1}" : AcceptLabel;
            if (_chainEntries.Contains(i))
            {
                // an earlier segment enters this chain through its entry slot: it starts a segment
                EnterChainLater($"chain{i}", i);
                StartSegment(ChainEntrySlots + i);
            }
            _asm.Label($"chain{i}");
            _asm.Comment($"chain {chain.Name}");
            var ipOnly = chain.Hook is XdpIngress { IpOnly: true } or TcIngress { IpOnly: true } or TcEgress { IpOnly: true };
            if (ipOnly)
            {
                // inet ingress: only IPv4/IPv6 enter the chain; a malformed IP header is dropped (nft_do_chain_inet_ingress).
                var isIp = _asm.NewLabel("is_ip");
                _asm.Emit(Asm.LdxW(R0, R10, L3Proto), Asm.JeqImm(R0, EtherTypeIpv4, isIp), Asm.JeqImm(R0, EtherTypeIpv6, isIp));
                EmitTerminal(Verdict.Accept, new ChainContext(chain.Name, next, next, null, 0, ImmutableStack<string>.Empty), chain.Name);
                _asm.Label(isIp);
                _asm.Emit(Asm.LdxW(R0, R10, Flags), Asm.JsetImm(R0, HasL4Proto, isIp + "_ok"),
                    Asm.Mov64Imm(R0, _flavor.DropCode), Asm.Exit());
                _asm.Label(isIp + "_ok");
            }
            var policy = _asm.NewLabel("policy");
            // an inet ingress chain reads nfproto from the packet even when a netdev chain shares its program
            var ctx = new ChainContext(chain.Name, policy, next, ipOnly ? null : _flavor is NetfilterFlavor ? _flavor.FixedNfProto : 5,
                0, ImmutableStack.Create(chain.Name), chain.Policy);
            _currentNfProto = ctx.NfProto;
            for (var r = 0; r < chain.Rules.Count; r++)
            {
                var rule = chain.Rules[r];
                if (!_asm.Reachable) { _idleCounters.AddRange(rule.CounterIds); continue; }
                if (SegmentFull) SplitBefore(chain, i, ctx);
                var records = _classifierRecords.Count;
                EmitRule(rule, ctx);
                // where a base chain's classifier stands in its chain (ClassifiedRunEdit appends to the last one)
                if (rule.Verdict is ClassifierVerdict && _classifierRecords.Count == records + 1)
                    _classifierRecords[records] = _classifierRecords[records] with
                    {
                        EndsChain = r == chain.Rules.Count - 1,
                        AfterClassifier = r > 0 && chain.Rules[r - 1].Verdict is ClassifierVerdict,
                    };
                MaybeEmitTailCall(chain, r, chains.Count, sourceRules.GetValueOrDefault(chain.Name));
            }
            _idleCounters.AddRange(chain.IdleCounters);
            _asm.Label(policy);
            _asm.Comment($"policy {chain.Policy}");
            EmitTerminal(chain.Policy, ctx, $"chain {chain.Name} policy");
        }
        foreach (var id in _idleCounters) CounterSlot(id);
        _segments.Add(FinishSegment());
        return [.. _segments];
    }

    /// <summary>
    /// Accept/drop end the program in place when they can (r0 = code; exit): jumps to one shared exit
    /// would span the whole program, and the verifier cannot patch 16-bit jumps that long.
    /// </summary>
    private void EmitTerminal(Verdict v, ChainContext ctx, string where)
    {
        if (ctx.Subprogram) { EmitSubprogramVerdict(v, where); return; }
        switch (v)
        {
            case AcceptVerdict when ctx.Accept == AcceptLabel: _asm.Emit(Asm.Mov64Imm(R0, _flavor.AcceptCode), Asm.Exit()); break;
            case AcceptVerdict: _asm.Emit(Asm.Ja(ctx.Accept)); break;
            case DropVerdict: _asm.Emit(Asm.Mov64Imm(R0, _flavor.DropCode), Asm.Exit()); break;
            default: throw new CodegenException($"{where}: a policy must be accept or drop, not {v}");
        }
    }

    /// <param name="ReturnPolicy">In a base chain, return applies the policy: emitted in place (no far jump).</param>
    /// <param name="Subprogram">The rules run in a subprogram (see <c>ProgramCompiler.Subprograms.cs</c>): verdicts are return codes.</param>
    private sealed record ChainContext(string Chain, string Return, string Accept, int? NfProto, int Depth, ImmutableStack<string> Path,
        Verdict? ReturnPolicy = null, bool Subprogram = false);

    /// <param name="TransportPayload">Some rule reads transport header bytes (netfilter copies their start once).</param>
    /// <param name="SetCount">How many sets (and maps) the rules read or write.</param>
    /// <param name="Sets">Whether the program reads the generation: it looks up sets or classifier maps (both double-buffered).</param>
    private sealed record Needs(ParseDepth Depth, bool PacketSize, bool Packet, bool Sets, bool TransportPayload, int SetCount);

    /// <summary>Whether the generation was read into <see cref="Generation"/> (set lookups need it).</summary>
    private bool _generationLoaded;

    /// <summary>
    /// Reads which copy of the set maps this run uses, once: every lookup of the run then reads the same
    /// copy, so a batch of element changes switched in meanwhile is invisible to this packet.
    /// </summary>
    private void EmitGenerationLoad()
    {
        var done = _asm.NewLabel("generation");
        _asm.Emit(Asm.StW(R10, Generation, 0), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Generation),
            Asm.LoadMapFd(R1, CompiledProgram.GenerationMap), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, done),
            Asm.LdxW(R1, R0, 0), Asm.And64Imm(R1, 1), Asm.StxW(R10, Generation, R1));
        _asm.Label(done);
        _generationLoaded = true;
    }

    private Needs Analyze(List<BaseChain> chains)
    {
        var depth = ParseDepth.None;
        var size = false;
        var packet = false;
        var sets = false;
        var transport = false;
        var setNames = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>();
        var work = new Stack<IEnumerable<Rule>>();
        foreach (var c in chains)
        {
            work.Push(c.Rules);
            if (c.Hook is XdpIngress { IpOnly: true } or TcIngress { IpOnly: true } or TcEgress { IpOnly: true })
                depth = ParseDepth.Transport;
        }
        void Need(ParseDepth d) { if (d > depth) depth = d; }
        void Key(MatchKey key)
        {
            foreach (var f in key.Fields)
            {
                if (f is PayloadField) packet = true;
                if (f is MetaField { Key: MetaKey.PktType } && _flavor is XdpFlavor) packet = true; // from the destination MAC
                switch (f)
                {
                    case MetaField { Key: MetaKey.L4Proto }: Need(ParseDepth.Transport); break;
                    case MetaField { Key: MetaKey.Protocol or MetaKey.NfProto }: Need(ParseDepth.Link); break;
                    case MetaField { Key: MetaKey.Length }: size = true; Need(ParseDepth.Link); break;
                    case PayloadField p when p.Base == PayloadBase.Transport: Need(ParseDepth.Transport); transport = true; break;
                    case PayloadField p when p.Base == PayloadBase.Network || p.Protocol == HeaderProtocol.Vlan: Need(ParseDepth.Link); break;
                }
            }
        }
        while (work.Count > 0)
            foreach (var r in work.Pop())
            {
                foreach (var m in r.Matchers)
                {
                    Key(m.Key);
                    if (m.Operator is InSet i)
                    {
                        sets = true;
                        setNames.Add(i.Set);
                        // an element's counter, quota or byte limit reads the packet's length
                        if (_ruleset.FindSet(i.Set) is { } looked && looked.Elements.Any(e => !e.Statements.IsEmpty))
                        {
                            size = true;
                            if (_flavor.LengthFromNetworkHeader) Need(ParseDepth.Link);
                        }
                    }
                }
                foreach (var o in r.Statements.OfType<ObjectMapStatement>())
                {
                    Key(o.Key);
                    sets = true;
                    setNames.Add(o.Map);
                }
                foreach (var u in r.Statements.OfType<SetUpdateStatement>())
                {
                    Key(u.Key);
                    sets = true;
                    setNames.Add(u.Set);
                }
                if (r.AllStatements.Any(s => s is CounterStatement or QuotaStatement or LimitStatement { Type: LimitType.Bytes })) { size = true; if (_flavor.LengthFromNetworkHeader) Need(ParseDepth.Link); }
                switch (r.Verdict)
                {
                    case VerdictMapVerdict vm:
                        Key(vm.Key);
                        sets = true;
                        setNames.Add(vm.Map);
                        var map = _ruleset.FindSet(vm.Map);
                        if (map is not null && map.Elements.Any(e => !e.Statements.IsEmpty))
                        {
                            size = true;
                            if (_flavor.LengthFromNetworkHeader) Need(ParseDepth.Link);
                        }
                        break;
                    case ClassifierVerdict cv:
                        foreach (var f in cv.Fields) Key(f);
                        sets = true; // its tables are double-buffered: the generation picks the copy
                        if (cv.Rules.Any(cr => cr.Statements.Any(s => s is CounterStatement)))
                        {
                            size = true;
                            if (_flavor.LengthFromNetworkHeader) Need(ParseDepth.Link);
                        }
                        break;
                }
                foreach (var t in Targets(r))
                    if (seen.Add(t) && _ruleset.FindChain(t) is { } chain) work.Push(chain.Rules);
            }
        if (size && depth == ParseDepth.None && _flavor.LengthFromNetworkHeader) depth = ParseDepth.Link;
        return new Needs(depth, size, packet || depth != ParseDepth.None, sets, transport, setNames.Count);
    }

    private List<MapSpec> MapSpecs(int baseChains)
    {
        var maps = new List<MapSpec>
        {
            new(CompiledProgram.CountersMap, BpfMapType.PerCpuArray, 4, 16, CounterLayout.Capacity(_nextCounterSlot), []),
        };
        if (_segments.Count > 1 || _tail != null)
            maps.Add(new MapSpec(CompiledProgram.SegmentsMap, BpfMapType.ProgArray, 4, 4, ChainEntrySlots + baseChains + (_tail != null ? 1 : 0), []));
        foreach (var (name, layout) in _sets)
        {
            var entries = layout.Entries();
            maps.Add(new MapSpec(SetMapName(name), layout.MapType, layout.KeySize, layout.ValueSize, layout.MaxEntriesFor(entries.Count), entries)
            {
                DoubleBuffered = true,
                PacketWritten = layout.Set.PacketWritten,
                // the lists elements carry by tag, when more than the one new elements get: the same map holds their states
                PacketStatements = string.Join(' ', layout.Set.PacketStatements) + (layout.Set.PacketStatementLists.IsEmpty && layout.Set.RuleStatementLists.IsEmpty ? ""
                    : " lists " + string.Join(", ", layout.Set.ElementLists.Select(l => "[" + string.Join(' ', l) + "]"))),
                Buckets = layout.HasPacketLimits
                    ? new Loader.BucketSpec(layout.BucketKeySize, layout.BucketMaxEntries, layout.KeySize, layout.BornOffsets) : null,
            });
        }
        if (!_classifiers.IsEmpty) maps.AddRange(_classifiers.MapSpecs());
        // the prologue reads the generation when the rules name a set, also one only rules without code name
        // (a `meta nfproto` the netfilter program decides at compile time): that set has no maps here
        if (_sets.Count > 0 || !_classifiers.IsEmpty || _needs?.Sets == true)
            maps.Add(new MapSpec(CompiledProgram.GenerationMap, BpfMapType.Array, 4, 4, 1, []));
        if (_usesQuotas) maps.Add(Loader.QuotaMap.Spec);
        if (_usesLimits) maps.Add(Loader.LimitMap.Spec);
        if (_logs.Count > 0)
            maps.Add(new MapSpec(CompiledProgram.LogEventsMap, BpfMapType.RingBuf, 0, 0, Log.LogEmitter.DefaultRingBufferSize, []));
        return maps;
    }

    internal static string SetMapName(string set) => "set:" + set;
}
