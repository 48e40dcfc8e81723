using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// `delete @s` against the packet path's other writes of a set's two copies, so that they agree whatever CPUs interleave
/// them (nft_rhash_delete and the insert are each atomic: the kernel's set holds one element or none). A delete claims
/// the element in the copy packets read, takes it from the other copy, then from the copy packets read; a key that
/// copy lacks is left alone (an insert under way writes the other copy after it, or the control plane's batch is on
/// the standby copy, not yet switched to). A packet that writes the other copy after the copy packets read looks at
/// the element there again: claimed by a delete, or gone, the delete may have passed the other copy before the write,
/// so the write is taken back. Before, a delete took the copy packets read first and an insert could land between the
/// two deletes (the copy packets read kept it, the other lost it), or a delete between an insert's two writes (the
/// other copy kept it), and the next generation switch showed the set changed.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>
    /// nft_rhash_delete: the element the copy packets read holds is claimed (<see cref="ElementStatementCode.Deleted"/>,
    /// atomic_fetch_or: of two CPUs deleting it one does), taken from the other copy, then from the copy packets read.
    /// The rule never breaks.
    /// </summary>
    private void EmitDelete(SetLayout layout, string map)
    {
        var end = _asm.NewLabel("dyndelend");
        EmitLookupCopy(map, Generation, end);
        // the element's buckets go with it: their stamps are read before it is deleted
        if (layout.HasPacketLimits)
        {
            EmitBucketKeyPad(layout);
            EmitLoadBorn(layout);
        }
        _asm.Emit(Asm.Mov64Imm(R1, ElementStatementCode.Deleted), Asm.AtomicFetchOr32(R0, 0, R1),
            Asm.JsetImm(R1, ElementStatementCode.Deleted, end));
        EmitDeleteCopy(map, OtherCopy);
        EmitDeleteCopy(map, Generation);
        if (layout.HasPacketLimits) EmitDeleteBuckets(layout);
        _asm.Label(end);
    }

    /// <summary>bpf_map_delete_elem(copy at <paramref name="slot"/>, Key); a missing copy skips.</summary>
    private void EmitDeleteCopy(string map, short slot) =>
        EmitOnCopy(map, slot, copy => _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.Call(HelperFunc.MapDeleteElem)));

    /// <summary>
    /// A new element without statements (at <see cref="UpdateValue"/>) into the copy packets read (BPF_NOEXIST: the
    /// first CPU's insert is kept, the second goes to <paramref name="exists"/>; a full copy, E2BIG: the set's size,
    /// breaks the rule, to <paramref name="full"/>), then the other copy, taken back (see <see cref="EmitTakeBackIfDeleted"/>)
    /// when a delete claimed or took the element meanwhile: the element was added, then deleted.
    /// </summary>
    private void EmitInsertBothCopies(string map, string exists, string full)
    {
        var inserted = _asm.NewLabel("dyninserted");
        EmitWriteCopy(map, Generation, BpfMap.NoExist, missing: full, Asm.JeqImm(R0, -EExist, exists), Asm.JneImm(R0, 0, full));
        EmitWriteCopy(map, OtherCopy, BpfMap.Any);
        EmitTakeBackIfDeleted(map, inserted, inserted);
        _asm.Label(inserted);
    }

    /// <summary>
    /// After a write of the other copy: the element the copy packets read holds, to <paramref name="kept"/> (R0) unless
    /// claimed by a delete or gone, when the delete may have taken the other copy's entry before the write: deleted
    /// there (the copies agree on the delete), to <paramref name="takenBack"/>. <paramref name="onElement"/> runs first on
    /// the element found (R0).
    /// </summary>
    private void EmitTakeBackIfDeleted(string map, string kept, string takenBack, params Instruction[] onElement)
    {
        var takeBack = _asm.NewLabel("dyntakeback");
        EmitLookupCopy(map, Generation, takeBack, [.. onElement, Asm.LdxW(R1, R0, 0), Asm.JsetImm(R1, ElementStatementCode.Deleted, takeBack)]);
        _asm.Emit(Asm.Ja(kept));
        _asm.Label(takeBack);
        EmitDeleteCopy(map, OtherCopy);
        _asm.Emit(Asm.Ja(takenBack));
    }
}
