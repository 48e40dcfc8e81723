using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// A change to a base chain confined to its rules past those its running program holds (<see cref="ChainTail"/>: the
/// program's one base chain ends in a classifier that tail-calls them): `nft add rule` appends there. Only the tail is
/// compiled (<see cref="ProgramCompiler.CompileTail"/>) and loaded into the slot at the commit; the program, its
/// classifier tables and its id stay (issue 12: a 10,000-rule classifier is neither compiled nor verified again). The
/// record after it is the running one with the tail's code and counter slots. Null for anything else (another chain or
/// set changed, a rule the program holds changed, a tail the compiler does not take, `log` in the tail): the caller
/// compiles the chain whole, and <see cref="MapDiff"/> then loads it anew (the tail's code differs from an empty slot).
/// </summary>
internal static class ChainTailEdit
{
    /// <summary>The record <paramref name="running"/> stands for after the edit, and the tail program to load (null: the slot empties).</summary>
    public static (CompiledProgram Compiled, CompiledProgram? Tail)? Between(Ruleset ruleset, AttachUnit unit, CompiledProgram running, UnitSource was, UnitSource now)
    {
        if (running.Tail is not { } tail || unit.Chains.Count != 1) return null;
        if (now.OneChainsRulesChangedFrom(was) is not var (before, after) || after.Name != tail.Chain) return null;
        if (after.Rules.Count < tail.From || before.Rules.Count < tail.From) return null;
        for (var q = 0; q < tail.From; q++)
            if (!UnitSource.Same(before.Rules[q], after.Rules[q])) return null;
        if (after.Rules.Count == tail.From)
            return (running with { Tail = tail with { Rules = 0, Code = [] }, CounterSlots = tail.MainCounters }, null);
        return Filled(ruleset, after, running, unit.Ipv6);
    }

    /// <summary>
    /// <paramref name="running"/> (a program with a chain tail holding <paramref name="chain"/>'s first source rules) with the
    /// chain's rules past them compiled as its tail, and the tail program; null when the compiler does not take them.
    /// Also how a restarted daemon rebuilds what a pinned program with a filled slot stands for (<see cref="Enforcer.Adopt(Ruleset, string, out int)"/>):
    /// then with the counter layout the earlier process saved (<paramref name="counters"/>).
    /// </summary>
    internal static (CompiledProgram Compiled, CompiledProgram Tail)? Filled(Ruleset ruleset, BaseChain chain, CompiledProgram running, bool ipv6,
        CounterLayout? counters = null)
    {
        if (running.Tail is not { } tail) return null;
        CompiledProgram? code;
        try
        {
            code = ProgramCompiler.CompileTail(ruleset, chain, running, ipv6, counters);
        }
        catch (Exception e) when (e is CodegenException or ArgumentException or Bpf.BpfAssemblyException)
        {
            return null;
        }
        if (code == null || code.LogConfigs.Count > 0) return null;
        var slots = new Dictionary<ulong, int>(tail.MainCounters);
        foreach (var (id, slot) in code.CounterSlots)
        {
            // a named counter the program's rules also count in keeps its one slot (the hint gives it the same)
            if (slots.TryGetValue(id, out var held) && held != slot) return null;
            slots[id] = slot;
        }
        var compiled = running with
        {
            Tail = tail with { Rules = chain.Rules.Count - tail.From, Code = code.Instructions },
            CounterSlots = slots,
            CounterSlotsUsed = Math.Max(running.CounterSlotsUsed, code.CounterSlotsUsed),
        };
        return (compiled, code);
    }
}
