using System.Collections.Immutable;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Splitting a long run of base-chain rules into segments, each a whole program the verifier checks on its
/// own (its 1M processed instructions and 8192 pending branches are per program), chained by tail calls
/// through a BPF_MAP_TYPE_PROG_ARRAY. A segment ends between two top-level rules of a base chain once it
/// holds <see cref="DefaultSegmentInstructions"/> instructions: its fall-through tail-calls the next segment,
/// which parses the packet again (the packet has not changed; parsing is deterministic) and goes on with
/// the next rule, so nf_tables' first-match order holds. A segment also ends once it holds
/// <see cref="SegmentBranches"/> conditional jumps: a rule that fails jumps to the next one, and the
/// verifier keeps such branches pending while it follows the chain (at most 8192 of them). A rule is never cut: its matchers, statements and
/// inlined jump targets stay in one segment, and a segment holds the subprograms of the regular chains it calls. Accept in a base chain goes on with the next base chain: a
/// segment that does not hold that chain's start tail-calls the chain's entry slot, and the chain then
/// starts a segment of its own. Counters, sets, quotas and limits are maps every segment shares.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>Instructions of rules (past the prologue) after which a segment ends at the next top-level rule.</summary>
    public const int DefaultSegmentInstructions = 60_000;

    /// <summary>Conditional jumps after which a segment ends, well below the verifier's 8192 pending branches.</summary>
    public const int SegmentBranches = 6000;

    /// <summary>The kernel's MAX_TAIL_CALL_CNT: a packet runs at most this many tail calls, so at most one more segment.</summary>
    public const int MaxTailCalls = 33;

    /// <summary>
    /// Segments a program may have: a packet goes forward through at most this many less one tail calls, and the
    /// netfilter dispatcher (Enforcement/Attachment.cs) spends one more of the <see cref="MaxTailCalls"/>.
    /// </summary>
    public const int MaxSegments = MaxTailCalls;

    /// <summary>Prog-array slots from here on are base-chain entries (slot = this + chain index); below, segment k is slot k.</summary>
    public const int ChainEntrySlots = MaxTailCalls + 1;

    private readonly int _segmentInstructions = DefaultSegmentInstructions;
    private readonly int _segmentBranches = SegmentBranches;
    /// <summary>Finished segments (the first is the program that is attached).</summary>
    private readonly List<ImmutableArray<Instruction>> _segments = [];
    /// <summary>Prog-array slot → the segment it holds.</summary>
    private readonly Dictionary<int, int> _tailCallSlots = new();
    /// <summary>Base chains (by run-order index) some earlier segment enters through their entry slot.</summary>
    private readonly HashSet<int> _chainEntries = [];
    private Needs? _needs;
    /// <summary>Instructions of the current segment's prologue: the budget counts rules only.</summary>
    private int _prologueLength;

    /// <summary>
    /// The segment's rules with the subprograms it holds reached the instruction budget, or the verifier's walk through
    /// them (a static subprogram is checked at every call site, as if inlined there) reached either budget.
    /// </summary>
    private bool SegmentFull => _asm.Count - _prologueLength + _segmentCallCost >= _segmentInstructions
        || _asm.Branches + _segmentCallBranches >= _segmentBranches;

    /// <summary>Entry, parsing and the generation read: what every segment runs before its first rule.</summary>
    private void EmitPrologue()
    {
        var needs = _needs!;
        _flavor.EmitEntry(_asm, needs.Packet);
        if (needs.Depth == ParseDepth.None && needs.PacketSize) _flavor.EmitPacketSize(_asm);
        new HeaderParser(_flavor, _asm).Emit(needs.Depth);
        _flavor.EmitParsed(_asm, needs.Depth == ParseDepth.Transport && needs.TransportPayload);
        if (needs.Sets) EmitGenerationLoad();
        _prologueLength = _asm.Count;
    }

    /// <summary>Tail-calls the program in prog-array <paramref name="slot"/>; if that fails (never, short of a kernel surprise), drops: fail closed.</summary>
    private void EmitTailCall(int slot)
    {
        _asm.Emit(Asm.Mov64Reg(R1, R6), Asm.LoadMapFd(R2, CompiledProgram.SegmentsMap), Asm.Mov64Imm(R3, slot),
            Asm.Call(HelperFunc.TailCall), Asm.Mov64Imm(R0, _flavor.DropCode), Asm.Exit());
    }

    /// <summary>
    /// Ends the segment before the next rule of base chain <paramref name="chainIndex"/>: its fall-through
    /// goes on in the next segment; the chain's policy and the next chain's start, if this segment refers to
    /// them, are emitted here (policy in place, next chain by its entry slot).
    /// </summary>
    private void SplitBefore(BaseChain chain, int chainIndex, ChainContext ctx)
    {
        var next = _segments.Count + 1;
        _asm.Comment($"segment {next}: rest of chain {chain.Name}");
        EmitTailCall(next);
        if (_asm.IsReferenced(ctx.Return))
        {
            _asm.Label(ctx.Return);
            EmitTerminal(chain.Policy, ctx, $"chain {chain.Name} policy");
        }
        if (ctx.Accept != AcceptLabel && _asm.IsReferenced(ctx.Accept)) EnterChainLater(ctx.Accept, chainIndex + 1);
        StartSegment(next);
    }

    /// <summary>Defines <paramref name="label"/> (base chain <paramref name="chainIndex"/>'s start) as a tail call to that chain's entry slot.</summary>
    private void EnterChainLater(string label, int chainIndex)
    {
        _asm.Label(label);
        EmitTailCall(ChainEntrySlots + chainIndex);
        _chainEntries.Add(chainIndex);
    }

    /// <summary>Finishes the current segment and starts segment <paramref name="slot"/>'s (= its index) with the prologue.</summary>
    private void StartSegment(int slot)
    {
        _segments.Add(FinishSegment());
        if (_segments.Count + 1 > MaxSegments)
            throw new CodegenException($"the chain needs more than {MaxSegments} programs chained by tail calls (each up to " +
                $"{_segmentInstructions} instructions or {_segmentBranches} branches), past the kernel's {MaxTailCalls} tail calls per packet");
        _asm = new Assembler(dropUnreachable: true, firstLabel: _asm.NextLabel);
        _tailCallSlots[slot] = _segments.Count;
        _generationLoaded = false;
        EmitPrologue();
    }

    private ImmutableArray<Instruction> FinishSegment()
    {
        _asm.Label(AcceptLabel).Emit(Asm.Mov64Imm(R0, _flavor.AcceptCode), Asm.Exit());
        _asm.Label(DropLabel).Emit(Asm.Mov64Imm(R0, _flavor.DropCode), Asm.Exit());
        // each segment carries the reject routines its own rules jump to
        foreach (var r in _rejects) new XdpReject(_asm, _flavor, _flavor.DropCode).Emit(r);
        _rejects.Clear();
        // then each subprogram the segment calls, once
        ImmutableArray<Instruction> segment = [.. _asm.Build(), .. SegmentSubprograms()];
        ResetSegmentSubprograms();
        return segment;
    }
}
