using System.Collections.Immutable;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Regular chains as BPF-to-BPF subprograms (BPF_PSEUDO_CALL): a chain reached by jump/goto is compiled
/// once and called at every jump site, so a chain jumped to from many rules costs its size once per
/// segment instead of once per jump. Calling convention: R1 = ctx, R2 = the base program's frame pointer
/// (its R10) less <see cref="RuntimeContext.FrameSize"/>; the subprogram keeps ctx in R6 and R2 +
/// FrameSize in R8 and reads and writes the parse context, set keys and scratch space in the caller's frame
/// through R8 (its code is emitted as usual, then every R10 operand is rewritten to R8), so it has no stack
/// of its own (the kernel's 512-byte stack holds one frame, not one per nesting level). XDP/tc subprograms reload R7 = data from ctx and compare packet bounds with
/// data_end reloaded at each access (R8 is taken). The return value is the chain's outcome:
/// <see cref="ReturnContinue"/> (return, or the end of the chain: the caller goes on after the jump),
/// <see cref="ReturnAccept"/>, <see cref="ReturnDrop"/>, or <see cref="ReturnReject"/> + k (the k-th
/// reject variant, answered by the base program's XDP reject routine): a verdict ends the whole base
/// chain, so a subprogram passes it up to its caller, and the base program applies it as the inlined
/// code did (accept goes on with the next base chain). A subprogram is global where it can be (see
/// <see cref="CanBeGlobal"/>): BTF (Libbpf/ProgramBtf) declares it <c>int f(ctx *, struct bf_frame *)</c>,
/// and the verifier checks it once per program, on its own, with the frame as FrameSize bytes of memory;
/// a static one is checked at every call site, with the caller's registers and stack. It allows at most 8 frames
/// (MAX_CALL_FRAMES), so a chain whose nested jumps need more frames is inlined, and so are chains in a
/// jump loop (the inlining reports the loop). Subprograms never tail-call: the kernel forbids tail calls
/// in subprograms loaded without BTF, and only the base program's frame splits into segments.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>The verifier's MAX_CALL_FRAMES: the base program's frame and up to seven nested calls.</summary>
    public const int MaxCallFrames = 8;

    /// <summary>Return codes of a regular chain's subprogram.</summary>
    public const int ReturnContinue = 0, ReturnAccept = 1, ReturnDrop = 2, ReturnReject = 3;

    /// <summary>A chunk of a chain split into several functions fell off its end: the chain goes on with its next chunk.</summary>
    public const int ReturnNextChunk = 0x7fff_ffff;

    /// <summary>Register holding the base program's frame pointer in a subprogram.</summary>
    private const Register FramePointer = R8;

    /// <param name="Entry">Label of the first instruction (the call target).</param>
    /// <param name="Code">The body, labels private to it, R10 operands already rewritten.</param>
    /// <param name="Callees">Entries of the subprograms it calls.</param>
    /// <param name="Verified">Instructions the verifier walks for one call: its own and its callees' at every call site.</param>
    /// <param name="VerifiedBranches">Conditional jumps likewise: the verifier may hold each pending for every call.</param>
    /// <param name="Codes">Return codes it may give (<see cref="ReturnContinue"/> unless it always ends in a verdict).</param>
    /// <param name="Rejects">Reject variants it (or a callee) may return.</param>
    /// <param name="Global">Verified once per program (its Verified counts once per segment) instead of at every call.</param>
    private sealed record Subprogram(string Entry, ImmutableArray<Instruction> Code, ImmutableHashSet<string> Callees,
        long Verified, long VerifiedBranches, ImmutableHashSet<int> Codes, ImmutableHashSet<RejectVerdict> Rejects, bool Global);

    private readonly bool _inlineRegularChains;
    /// <summary>Every function (a chain's, or a chunk of one) by entry label.</summary>
    private readonly Dictionary<string, Subprogram> _subprograms = new(StringComparer.Ordinal);
    /// <summary>A chain's functions by the chain's entry label: one, or its chunks in order.</summary>
    private readonly Dictionary<string, ImmutableArray<Subprogram>> _chainChunks = new(StringComparer.Ordinal);
    /// <summary>Frames a chain's subprogram needs (itself and its deepest callees); unbounded for a loop.</summary>
    private readonly Dictionary<string, int> _frames = new(StringComparer.Ordinal);
    /// <summary>Reject variants as return codes (code = <see cref="ReturnReject"/> + index).</summary>
    private readonly List<RejectVerdict> _rejectCodes = [];
    /// <summary>While a subprogram is compiled: the rejects and return codes it may give.</summary>
    private HashSet<RejectVerdict>? _subprogramRejects;
    private HashSet<int>? _subprogramCodes;
    /// <summary>While a subprogram is compiled: the verifier's walk through its call sites' callees.</summary>
    private long _subprogramCalleeCost, _subprogramCalleeBranches;
    /// <summary>
    /// While a subprogram is compiled: its code keeps state in the frame the verifier must track across instructions
    /// (a spilled pointer, a loop's counter). A global function sees the frame as plain bytes, so it cannot be global.
    /// </summary>
    private bool _frameHoldsVerifierState;
    /// <summary>Subprograms the current segment holds (its calls and theirs).</summary>
    private readonly HashSet<string> _segmentSubprograms = new(StringComparer.Ordinal);
    /// <summary>
    /// Instructions and conditional jumps the verifier walks in the current segment's calls: it checks a static
    /// subprogram at every call site, so these count against the segment's budgets as inlined code would.
    /// </summary>
    private long _segmentCallCost, _segmentCallBranches;

    /// <summary>Global functions are off (every subprogram static, as before BTF): the tests compare the two forms.</summary>
    private readonly bool _staticSubprogramsOnly;

    /// <summary>Regular chains a rule's verdict enters (jump, goto, verdict-map elements, classifier gotos).</summary>
    private IEnumerable<string> Targets(Rule rule)
    {
        switch (rule.Verdict)
        {
            case JumpVerdict j: yield return j.Chain; break;
            case GotoVerdict g: yield return g.Chain; break;
            case VerdictMapVerdict vm when _ruleset.FindSet(vm.Map) is { } map:
                foreach (var e in map.Elements)
                    if (e.Verdict is JumpVerdict ej) yield return ej.Chain;
                    else if (e.Verdict is GotoVerdict eg) yield return eg.Chain;
                break;
            case ClassifierVerdict cv:
                foreach (var cr in cv.Rules)
                    if (cr.Verdict is GotoVerdict cg) yield return cg.Chain;
                break;
        }
    }

    /// <summary>Frames chain <paramref name="name"/> needs as a subprogram: 1 + its callees' most; int.MaxValue in a loop or for an unknown chain.</summary>
    private int Frames(string name, HashSet<string>? visiting = null)
    {
        if (_frames.TryGetValue(name, out var known)) return known;
        visiting ??= new HashSet<string>(StringComparer.Ordinal);
        if (_ruleset.FindChain(name) is not { } chain || !visiting.Add(name)) return int.MaxValue;
        var most = 0;
        foreach (var t in chain.Rules.SelectMany(Targets))
            most = Math.Max(most, Frames(t, visiting));
        visiting.Remove(name);
        // a chain that reaches a loop (through a chain still being visited) nests without bound
        return _frames[name] = most == int.MaxValue ? int.MaxValue : most + 1;
    }

    /// <summary>
    /// Whether a jump/goto to <paramref name="name"/> calls its subprogram: its nesting fits the call frames and
    /// nf_tables' jump depth from here; otherwise it is inlined (which reports loops and too deep jumps by rule).
    /// </summary>
    private bool CallsSubprogram(string name, ChainContext ctx)
    {
        if (_inlineRegularChains) return false;
        var frames = Frames(name);
        return frames < MaxCallFrames && ctx.Depth + frames <= MaxJumpDepth;
    }

    private static string EntryOf(string chain, int? nfProto) => $"chain:{chain}/{nfProto?.ToString() ?? "ip"}";

    /// <summary>
    /// Calls chain <paramref name="name"/>'s subprogram and applies its outcome: continue falls through (the
    /// caller's jump or goto goes on from there), a verdict is returned further up from a subprogram and applied
    /// in the base program (accept as this chain's accept, drop, a reject by its routine).
    /// </summary>
    private void EmitCall(string name, ChainContext ctx, string where)
    {
        var chunks = SubprogramOf(name, ctx.NfProto, where);
        var outcome = _asm.NewLabel("outcome");
        for (var k = 0; k < chunks.Length; k++)
        {
            // R10 is the base program's frame here, or (in a subprogram) rewritten to the R8 that holds it
            _asm.Emit(Asm.Mov64Reg(R1, R6), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, -RuntimeContext.FrameSize), Asm.CallLocal(chunks[k].Entry));
            // a chunk that did not fall through decided the chain's outcome: the later chunks do not run
            if (k + 1 < chunks.Length) _asm.Emit(Asm.JneImm(R0, ReturnNextChunk, outcome));
        }
        if (_asm.IsReferenced(outcome)) _asm.Label(outcome);
        var codes = chunks.SelectMany(c => c.Codes).Where(c => c != ReturnNextChunk).ToImmutableHashSet();
        var chainRejects = chunks.SelectMany(c => c.Rejects).ToImmutableHashSet();
        var cont = _asm.NewLabel("returned");
        // a chain that always ends in a verdict never comes back: what follows the call is unreachable, as inlined
        if (codes.Contains(ReturnContinue)) _asm.Emit(Asm.JeqImm(R0, ReturnContinue, cont));
        if (ctx.Subprogram)
        {
            _subprogramRejects!.UnionWith(chainRejects);
            _subprogramCodes!.UnionWith(codes.Remove(ReturnContinue));
            foreach (var sub in chunks.Where(c => !c.Global))
            {
                // a static callee is checked with its caller's frame: through a global caller it would see plain bytes
                _frameHoldsVerifierState = true;
                _subprogramCalleeCost += sub.Verified;
                _subprogramCalleeBranches += sub.VerifiedBranches;
            }
            _asm.Emit(Asm.Exit()); // the verdict goes up unchanged
        }
        else
        {
            foreach (var sub in chunks)
            {
                AddToSegment(sub);
                if (sub.Global) continue;
                _segmentCallCost += sub.Verified;
                _segmentCallBranches += sub.VerifiedBranches;
            }
            var accept = _asm.NewLabel("subaccept");
            if (codes.Contains(ReturnAccept)) _asm.Emit(Asm.JeqImm(R0, ReturnAccept, accept));
            foreach (var r in chainRejects.OrderBy(_rejectCodes.IndexOf))
            {
                if (!_rejects.Contains(r)) _rejects.Add(r);
                _asm.Emit(Asm.JeqImm(R0, ReturnReject + _rejectCodes.IndexOf(r), XdpReject.Label(r)));
            }
            // drop, or a code no subprogram returns (fail closed)
            _asm.Emit(Asm.Mov64Imm(R0, _flavor.DropCode), Asm.Exit());
            if (_asm.IsReferenced(accept))
            {
                _asm.Label(accept);
                EmitTerminal(Verdict.Accept, ctx, where);
            }
        }
        if (_asm.IsReferenced(cont)) _asm.Label(cont);
    }

    /// <summary>A verdict that ends the base chain, inside a subprogram: returned as its code.</summary>
    private void EmitSubprogramVerdict(Verdict v, string where)
    {
        int code;
        switch (v)
        {
            case AcceptVerdict: code = ReturnAccept; break;
            case DropVerdict: code = ReturnDrop; break;
            case RejectVerdict r:
                if (!_rejectCodes.Contains(r)) _rejectCodes.Add(r);
                _subprogramRejects!.Add(r);
                code = ReturnReject + _rejectCodes.IndexOf(r);
                break;
            default: throw new CodegenException($"{where}: verdict {v} cannot end a regular chain");
        }
        _subprogramCodes!.Add(code);
        _asm.Emit(Asm.Mov64Imm(R0, code), Asm.Exit());
    }

    /// <summary>
    /// Chain <paramref name="name"/>'s functions for packets of meta nfproto <paramref name="nfProto"/>, compiled on first use:
    /// one, or its chunks in order when its rules exceed one walk's budgets (see <c>ProgramCompiler.Chunks.cs</c>).
    /// </summary>
    private ImmutableArray<Subprogram> SubprogramOf(string name, int? nfProto, string where)
    {
        var entry = EntryOf(name, nfProto);
        if (_chainChunks.TryGetValue(entry, out var done)) return done;
        var chain = _ruleset.FindChain(name) ?? throw new CodegenException($"{where}: unknown chain '{name}'");

        var (asm, nf, generation, rejects, codes, calleeCost, calleeBranches, frameState) =
            (_asm, _currentNfProto, _generationLoaded, _subprogramRejects, _subprogramCodes, _subprogramCalleeCost, _subprogramCalleeBranches, _frameHoldsVerifierState);
        _currentNfProto = nfProto;
        _generationLoaded = _needs!.Sets; // the base program's prologue read it into its frame
        var wasSubprogram = _flavor.InSubprogram;
        _flavor.InSubprogram = true;
        try
        {
            var chunks = ImmutableArray.CreateBuilder<Subprogram>();
            // depth: the deepest this chain may start at, so that its own nesting stays within nf_tables' 16
            var depth = MaxJumpDepth + 1 - Frames(name);
            var ctx = StartChunk(name, entry, nfProto, depth);
            var rulesInChunk = 0;
            foreach (var rule in chain.Rules)
            {
                // An earlier rule always ends the chain: nothing after it runs, its counters stay at zero.
                if (!_asm.Reachable) { _idleCounters.AddRange(rule.CounterIds); continue; }
                if (rulesInChunk > 0 && ChunkFull)
                {
                    chunks.Add(FinishChunk(ChunkEntry(entry, chunks.Count), ctx, last: false));
                    ctx = StartChunk(name, ChunkEntry(entry, chunks.Count), nfProto, depth);
                    rulesInChunk = 0;
                }
                EmitRule(rule, ctx);
                rulesInChunk++;
            }
            _idleCounters.AddRange(chain.IdleCounters);
            chunks.Add(FinishChunk(ChunkEntry(entry, chunks.Count), ctx, last: true));
            foreach (var c in chunks) _subprograms[c.Entry] = c;
            return _chainChunks[entry] = chunks.ToImmutable();
        }
        finally
        {
            _flavor.InSubprogram = wasSubprogram;
            (_asm, _currentNfProto, _generationLoaded, _subprogramRejects, _subprogramCodes, _subprogramCalleeCost, _subprogramCalleeBranches, _frameHoldsVerifierState) =
                (asm, nf, generation, rejects, codes, calleeCost, calleeBranches, frameState);
        }
    }

    /// <summary>Starts the function at <paramref name="entry"/> (a chain's, or one of its chunks): a fresh assembler and what it tracks.</summary>
    private ChainContext StartChunk(string chain, string entry, int? nfProto, int depth)
    {
        _asm = new Assembler(dropUnreachable: true);
        _subprogramRejects = [];
        _subprogramCodes = [];
        _subprogramCalleeCost = _subprogramCalleeBranches = 0;
        _frameHoldsVerifierState = false;
        _asm.Label(entry).Comment($"chain {chain} (subprogram)");
        _asm.Emit(Asm.Mov64Reg(FramePointer, R2), Asm.Add64Imm(FramePointer, RuntimeContext.FrameSize));
        _flavor.EmitEntry(_asm, _needs!.Packet); // R6 = ctx (and XDP/tc: R7 = data)
        return new ChainContext(chain, _asm.NewLabel("return"), "", nfProto, depth, ImmutableStack.Create(chain), Subprogram: true);
    }

    /// <summary>
    /// Ends the function at <paramref name="entry"/>: the chain's return gives <see cref="ReturnContinue"/>, and so does
    /// falling off its end when it is the chain's <paramref name="last"/> chunk; an earlier chunk falls through to the next
    /// (<see cref="ReturnNextChunk"/>).
    /// </summary>
    private Subprogram FinishChunk(string entry, ChainContext ctx, bool last)
    {
        if (!last && _asm.Reachable)
        {
            _asm.Emit(Asm.Mov64Imm(R0, ReturnNextChunk), Asm.Exit());
            _subprogramCodes!.Add(ReturnNextChunk);
        }
        if (_asm.Reachable || _asm.IsReferenced(ctx.Return))
        {
            _asm.Label(ctx.Return).Emit(Asm.Mov64Imm(R0, ReturnContinue), Asm.Exit());
            _subprogramCodes!.Add(ReturnContinue);
        }
        var branches = _asm.Branches;
        var built = _asm.Build();
        var global = CanBeGlobal(built);
        var code = Private(built, entry);
        var callees = code.Where(i => i.IsLocalCall).Select(i => i.Reference!).ToImmutableHashSet(StringComparer.Ordinal);
        return new Subprogram(entry, code, callees, code.Length + _subprogramCalleeCost, branches + _subprogramCalleeBranches,
            [.. _subprogramCodes!], [.. _subprogramRejects!], global);
    }

    /// <summary>
    /// A subprogram's body as placed in a segment: its labels prefixed with its entry (each assembler numbers
    /// labels from 0), and the stack it addresses through R10 moved to the base program's frame in R8.
    /// </summary>
    private static ImmutableArray<Instruction> Private(ImmutableArray<Instruction> code, string entry) =>
        [.. code.Select(i => i with
        {
            Dst = i.Dst == R10 ? FramePointer : i.Dst,
            Src = i.Src == R10 && !i.IsLoadImm64 && OpCode.Class(i.OpCode) != OpCode.Jmp ? FramePointer : i.Src,
            Labels = [.. i.Labels.Select(l => l == entry ? l : entry + l)],
            Reference = i.Reference is { } r && !i.IsLocalCall ? entry + r : i.Reference,
        })];

    /// <summary>
    /// Whether a subprogram with body <paramref name="code"/> (before the R10 rewrite) can be a global function: the
    /// verifier then knows nothing of the frame but its size, so the body must keep no verifier state there
    /// (<see cref="_frameHoldsVerifierState"/>) and must not read the packet through the base program's dynptr
    /// (netfilter: a dynptr cannot be passed as memory; its reads of the cached headers need none).
    /// </summary>
    private bool CanBeGlobal(ImmutableArray<Instruction> code) =>
        !_staticSubprogramsOnly && !_frameHoldsVerifierState
        && !code.Any(i => i.IsHelperCall && i.Constant == (int)HelperFunc.DynptrRead);

    /// <summary>
    /// Puts <paramref name="sub"/> and its callees into the current segment (each once); the verifier walks a global
    /// one once per segment (a static one at each call site: counted there).
    /// </summary>
    private void AddToSegment(Subprogram sub)
    {
        if (!_segmentSubprograms.Add(sub.Entry)) return;
        if (sub.Global)
        {
            _segmentCallCost += sub.Verified;
            _segmentCallBranches += sub.VerifiedBranches;
        }
        foreach (var c in sub.Callees) AddToSegment(_subprograms[c]);
    }

    /// <summary>The current segment's subprograms, after its own code (the verifier wants each to start after an exit).</summary>
    private IEnumerable<Instruction> SegmentSubprograms() =>
        _segmentSubprograms.Order(StringComparer.Ordinal).SelectMany(e => _subprograms[e].Code);

    /// <summary>Every subprogram's entry label and whether it is global, for the loader's func_info.</summary>
    private ImmutableDictionary<string, bool> Functions() =>
        _subprograms.Values.ToImmutableDictionary(s => s.Entry, s => s.Global, StringComparer.Ordinal);

    private void ResetSegmentSubprograms()
    {
        _segmentSubprograms.Clear();
        _segmentCallCost = _segmentCallBranches = 0;
    }
}
