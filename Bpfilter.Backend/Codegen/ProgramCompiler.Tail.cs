using System.Collections.Immutable;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Lowering;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The chain tail (issue 12): a program whose one base chain ends in a classifier tail-calls, where no classifier rule
/// matched, the prog-array slot <see cref="ChainTail.Slot"/> just before the chain's policy. The slot is empty after a
/// compile: the tail call falls through and the policy runs, as before. Rules appended to the chain later (what `nft add
/// rule` does) are compiled on their own into a small program loaded into that slot (<see cref="CompileTail"/>), which
/// parses the packet again, runs them in order and ends in the policy: first-match order holds (every classifier rule
/// comes before them and none matched), the big program is neither compiled nor verified again and keeps its id.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>The tail's slot in the prog array (past the segments' and the one base chain's entry slot).</summary>
    public const int TailSlot = ChainEntrySlots + 1;

    /// <summary>Source rules a tail holds at most: past them the chain is compiled whole again (the classifier takes them).</summary>
    public const int MaxTailRules = 64;

    private ChainTail? _tail;

    /// <summary>
    /// After the rule at <paramref name="index"/> of the one base chain: when it is the chain's classifier that ends it, the
    /// tail call to <see cref="TailSlot"/> (falling through to the policy while the slot is empty). Not when the packet
    /// may already have spent its tail calls on segments (an empty-looking slot must never skip rules).
    /// </summary>
    private void MaybeEmitTailCall(BaseChain chain, int index, int chains, int sourceRules)
    {
        if (chains != 1 || index != chain.Rules.Count - 1 || chain.Rules[index].Verdict is not ClassifierVerdict || !_asm.Reachable) return;
        if (_segments.Count + 2 >= MaxSegments) return;
        _asm.Comment($"chain {chain.Name} tail (slot {TailSlot}): rules appended after the classifier");
        _asm.Emit(Asm.Mov64Reg(R1, R6), Asm.LoadMapFd(R2, CompiledProgram.SegmentsMap), Asm.Mov64Imm(R3, TailSlot),
            Asm.Call(HelperFunc.TailCall));
        _tail = new ChainTail(chain.Name, TailSlot, sourceRules, new Dictionary<ulong, int>());
    }

    /// <summary>
    /// The program for the slot of <paramref name="running"/>'s chain tail, holding the rules of <paramref name="chain"/>
    /// (its source rules, unlowered) from the first the running program does not hold: the running program's counter slots
    /// kept, new counter ids past them. Lowered with <see cref="UnreachableRules"/> only (no grouping or classifier: no
    /// maps of its own). Null when the tail program would need anything but the running program's counter, generation,
    /// quota, limit and log maps, or is not one segment. <paramref name="counters"/> (default: the running program's) is the
    /// layout an earlier process saved when a restarted one compiles the tail its pinned program runs (its tail's counters too).
    /// </summary>
    public static CompiledProgram? CompileTail(Ruleset ruleset, BaseChain chain, CompiledProgram running, bool ipv6 = false, CounterLayout? counters = null)
    {
        if (running.Tail is not { } tail || tail.Chain != chain.Name || chain.Rules.Count < tail.From) return null;
        var rules = chain.Rules.Items.RemoveRange(0, tail.From);
        if (rules.Length > MaxTailRules) return null;
        var compiled = Compile(ruleset with { Chains = ValueList<Chain>.Empty }, [chain with { Rules = rules.ToValueList() }], ipv6,
            new LoweringPipeline(new UnreachableRules()), counters ?? CounterLayout.Of(running));
        if (!compiled.Segments.IsEmpty || compiled.Functions.Count > 0 || compiled.Maps.Any(m => m.DoubleBuffered || m.Name == CompiledProgram.SegmentsMap))
            return null;
        return compiled;
    }
}

/// <summary>
/// Where a compiled program's one base chain tail-calls the rules appended after its classifier: slot <see cref="Slot"/>
/// of <see cref="CompiledProgram.SegmentsMap"/>; the program holds the chain's first <see cref="From"/> source rules with
/// the counter slots <see cref="MainCounters"/>, the tail program (<see cref="Code"/>, empty: none, the slot is empty) the
/// next <see cref="Rules"/>.
/// </summary>
public sealed record ChainTail(string Chain, int Slot, int From, IReadOnlyDictionary<ulong, int> MainCounters)
{
    public int Rules { get; init; }
    public ImmutableArray<Instruction> Code { get; init; } = [];
}
