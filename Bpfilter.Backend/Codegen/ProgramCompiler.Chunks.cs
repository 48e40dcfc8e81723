namespace Bpfilter.Backend.Codegen;

/// <summary>
/// A regular chain too long for one verifier walk, split into chunks: consecutive runs of its rules, each a function of
/// its own (global where it can be: verified once, on its own, with the same 8192 pending branches and the budgets a
/// segment has), which the jumping rule calls in order. A chunk runs its rules exactly as the chain would: a verdict, a
/// jump's or goto's outcome and the chain's return (<see cref="ReturnContinue"/>) are its return code as the chain's
/// would be, and only falling off its end gives <see cref="ReturnNextChunk"/>, on which the caller calls the next
/// chunk; any other code is the chain's outcome, applied as for a chain of one function. So first-match order, return,
/// goto, nested jumps and counters are those of the unsplit chain; a chunk ends only between two rules of the chain.
/// Every chunk occupies the frame the chain's one function would (the caller calls them one after the other), so the
/// nesting's call frames are unchanged. All functions of one program still share the verifier's 1M processed
/// instructions, so a chain is bounded by that, not by its pending branches.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>
    /// The chunk being compiled reached a segment's instruction or branch budget (its own code and the static callees the
    /// verifier walks with it): the next rule starts a new chunk. Static subprograms only (the form before global
    /// functions) are never split.
    /// </summary>
    private bool ChunkFull => !_staticSubprogramsOnly
        && (_asm.Count + _subprogramCalleeCost >= _segmentInstructions || _asm.Branches + _subprogramCalleeBranches >= _segmentBranches);

    /// <summary>Chunk <paramref name="k"/>'s entry label: the chain's own for the first.</summary>
    private static string ChunkEntry(string entry, int k) => k == 0 ? entry : $"{entry}#{k}";
}
