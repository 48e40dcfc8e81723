using System.Numerics;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Which slot of a program's per-CPU counter array each rule counter id holds, and <see cref="Next"/>, the
/// first slot no counter of that program ever held. Given to the compiler as a hint, it keeps every id in
/// its slot and puts new ids at <see cref="Next"/> and above: adding a rule whose code is a map element (a
/// grouped rule, a vmap element) then leaves the instructions as they were, and a new counter never starts
/// from a slot a deleted rule counted in while the program kept running.
/// </summary>
public sealed record CounterLayout(IReadOnlyDictionary<ulong, int> Slots, int Next)
{
    /// <summary>
    /// Slots the counter array is created with for <paramref name="used"/> slots: a power of two with at least a
    /// quarter to spare, so rules can be added to a running program (the verifier bounds-checks the lookup, not
    /// the instructions: the size is not in the code).
    /// </summary>
    public static int Capacity(int used) => (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(64, used + used / 4 + 1));

    /// <summary>The layout of a compiled program, as a hint for the next compilation of the same attach point.</summary>
    public static CounterLayout Of(CompiledProgram p) => new(p.CounterSlots, p.CounterSlotsUsed);

    /// <summary>Slots no live counter holds below <see cref="Next"/> (deleted rules while the program stayed).</summary>
    public int Holes => Next - Slots.Count;
}
