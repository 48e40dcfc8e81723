using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// A packet that finds its key's element expired makes a new one in its place, as nft_rhash_update inserts a new element
/// beside the expired one (which no longer compares equal): of two CPUs doing so at once, the first insert is kept and
/// the second packet gets that element. The BPF map holds one element per key, so the expired element is claimed
/// first: BPF_CMPXCHG on its expiry, in the copy packets read, from the expired value read to a claim marker (a value
/// far below any jiffies64, so the claimed element is expired to every reader, lookups and the daemon's collection
/// included). Only the CPU whose exchange succeeds writes the new element (the other copy first, then the copy packets
/// read, a new map element replacing the claimed one whole); a packet that finds the claim waits until the new element
/// is there and runs its statements on it, as the loser of a creation race does.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>The claim markers: <see cref="Base"/> + the claiming CPU's id (0 is "never expires", 1 an element the control plane wrote already expired).</summary>
    static class ReplacementClaim
    {
        public const int Base = 2;
        /// <summary>Markers are Base to Base + Span - 1: CPU ids below it.</summary>
        public const int Span = 1 << 16;
        /// <summary>
        /// How many looks at the claimed element a packet makes before it takes the claim over: two inlined map lookups
        /// each, some 45 ms in all (65536 took 0.7 ms on the test machine), where the claiming CPU needs two map writes
        /// between its claim and its new element; long enough for a claiming virtual CPU the host stalls (a takeover
        /// while it still writes would leave the copies with two stamps), within may_goto's budget (8M rounds, 250 ms).
        /// </summary>
        public const int WaitRounds = 1 << 22;
    }

    /// <summary>
    /// The replacement of an expired element (at <paramref name="replace"/>: R0 its value in the copy packets read, R1
    /// its expiry), ending at <paramref name="done"/> with the element whose statements the packet runs in that copy;
    /// <paramref name="uncounted"/> skips them (see <see cref="EmitClaim"/>), <paramref name="next"/> breaks the rule; the new element gets the rule's list, <paramref name="tag"/> (-1: none),
    /// and <paramref name="timeout"/>; `update` renews an element another CPU made meanwhile to <paramref name="renewal"/>.
    /// </summary>
    private void EmitReplace(SetUpdateStatement u, SetLayout layout, int tag, string map, ulong timeout, ulong renewal, string replace, string next, string done, string uncounted)
    {
        var wait = _asm.NewLabel("dynwait");
        var waitLoop = _asm.NewLabel("dynwaitloop");
        var settled = _asm.NewLabel("dynsettled");
        var takeover = _asm.NewLabel("dyntakeover");
        var publish = _asm.NewLabel("dynpublish");
        var unwritten = _asm.NewLabel("dynunwritten");
        var absent = _asm.NewLabel("dynabsent");
        _asm.Label(replace);
        // claimed already: another CPU is writing the new element
        EmitJumpIfClaimed(R1, R2, wait);
        EmitClaim(layout, tag, map, timeout, takeover: false, lost: wait, absent);
        // won: the new element goes to the other copy first, so a packet that finds it in the copy packets read adds in
        // both; it says it is not yet in the other copy (code 3), so should the other copy lose it in between (`delete @s`,
        // the daemon's collection) the first packet to run its statements writes it there again (EmitPacketStatements)
        _asm.Label(publish);
        if (tag >= 0) _asm.Emit(Asm.StW(R10, UpdateValue + 4, ElementStatementCode.Statements | tag << SetLayout.TagShift));
        EmitWriteCopy(map, OtherCopy, BpfMap.Any);
        // a `delete @s` that claimed or took the expired element meanwhile may have passed the other copy: the write is
        // taken back and the new element not made (replaced, then deleted: the packet counts on neither)
        var undeleted = _asm.NewLabel("dynundeleted");
        var deleted = _asm.NewLabel("dyndeleted");
        EmitTakeBackIfDeleted(map, undeleted, uncounted);
        _asm.Label(undeleted);
        if (tag >= 0) _asm.Emit(Asm.StW(R10, UpdateValue + 4, ElementStatementCode.StatementsNotInOtherCopy | tag << SetLayout.TagShift));
        // BPF_EXIST: over the claimed element only; a delete that took it since leaves no element to replace (ENOENT)
        EmitWriteCopy(map, Generation, BpfMap.Exist, missing: next, Asm.JeqImm(R0, -ENoEnt, deleted), Asm.JneImm(R0, 0, unwritten));
        // the expired element takes its buckets with it (no packet reaches its stamps again); one the control plane
        // wrote has stamp 0, no bucket's
        if (layout.HasPacketLimits) EmitDeleteBuckets(layout);
        _asm.Emit(Asm.Ja(done));
        // taken since the claim and the copy full (E2BIG): the rule breaks, as when the set is full, and the other copy
        // does not keep an element the copy packets read lacks
        _asm.Label(unwritten);
        EmitDeleteCopy(map, OtherCopy);
        _asm.Emit(Asm.Ja(next));
        _asm.Label(deleted);
        EmitDeleteCopy(map, OtherCopy);
        _asm.Emit(Asm.Ja(uncounted));
        // taken before the claim: an element another CPU made first is waited for and found
        EmitMakeAbsent(map, tag, absent, made: wait, next, done);
        // another CPU's claim: looked at again until its new element replaces the claimed one (or the key is gone)
        _asm.Label(wait);
        _asm.Emit(Asm.Call(HelperFunc.GetSmpProcessorId), Asm.Add64Imm(R0, ReplacementClaim.Base), Asm.StxW(R10, DynsetClaim, R0),
            Asm.StW(R10, DynsetWaitRounds, ReplacementClaim.WaitRounds));
        _asm.Label(waitLoop);
        _asm.Emit(Asm.MayGoto(takeover));
        EmitLookupCopy(map, Generation, done);
        _asm.Emit(Asm.LdxDW(R1, R0, SetLayout.ExpiresOffset), Asm.Mov64Reg(R2, R1), Asm.Add64Imm(R2, -ReplacementClaim.Base),
            Asm.JgeImm(R2, ReplacementClaim.Span, settled),
            // claimed by this CPU: a packet that interrupted the claiming one, which cannot go on until this one ends
            Asm.LdxW(R2, R10, DynsetClaim), Asm.JeqReg(R1, R2, takeover),
            Asm.LdxW(R1, R10, DynsetWaitRounds), Asm.Add64Imm(R1, -1), Asm.StxW(R10, DynsetWaitRounds, R1), Asm.JeqImm(R1, 0, takeover),
            Asm.Ja(waitLoop));
        // the new element (R0): the packet's statements run on it, and `update` renews it, as the loser of a creation race
        _asm.Label(settled);
        if (u.Op == SetUpdateOp.Update) EmitFoundElement(u, layout, map, renewal, done, done);
        _asm.Emit(Asm.Ja(done));
        // a claim never followed by its element (its CPU interrupted by this packet, or stalled beyond the wait, or a claimed
        // value a copy of the set took from userspace) is taken over from the marker it holds; should that exchange fail
        // too (a third CPU took it over) the packet runs no statements
        _asm.Label(takeover);
        // after the wait the packet no longer waits: its claim, or what it finds, ends it (no way back into the wait,
        // whose loop the verifier bounds through its may_goto)
        var found = _asm.NewLabel("dynfound");
        var absentAfter = _asm.NewLabel("dynabsentafter");
        EmitClaim(layout, tag, map, timeout, takeover: true, lost: uncounted, absentAfter, found);
        _asm.Emit(Asm.Ja(publish));
        EmitMakeAbsent(map, tag, absentAfter, made: found, next, done);
        _asm.Label(found);
        EmitLookupCopy(map, Generation, done);
        _asm.Emit(Asm.Ja(settled));
    }

    /// <summary>
    /// At <paramref name="absent"/>: the expired element was taken (the daemon's collection, `delete @s`) before the claim,
    /// so the new one is made as on a key no element holds (BPF_NOEXIST, code 3); when another CPU made one first, to
    /// <paramref name="made"/>.
    /// </summary>
    private void EmitMakeAbsent(string map, int tag, string absent, string made, string next, string done)
    {
        _asm.Label(absent);
        if (tag < 0) EmitInsertBothCopies(map, made, next);
        else EmitWriteCopy(map, Generation, BpfMap.NoExist, missing: next, Asm.JeqImm(R0, -EExist, made), Asm.JneImm(R0, 0, next));
        _asm.Emit(Asm.Ja(done));
    }

    /// <summary>Jumps to <paramref name="claimed"/> when <paramref name="expiry"/> holds a claim marker (<paramref name="scratch"/> is clobbered).</summary>
    private void EmitJumpIfClaimed(Register expiry, Register scratch, string claimed) =>
        _asm.Emit(Asm.Mov64Reg(scratch, expiry), Asm.Add64Imm(scratch, -ReplacementClaim.Base), Asm.JltImm(scratch, ReplacementClaim.Span, claimed));

    /// <summary>
    /// Builds the new element at <see cref="UpdateValue"/>, looks the key up again in the copy packets read (gone: to
    /// <paramref name="absent"/>), takes the element's born stamp (its buckets go when it is replaced) and exchanges its
    /// expiry for this CPU's claim marker: from the expired value it holds, or with <paramref name="takeover"/> from the
    /// claim marker it holds (an element no longer expired or no longer claimed goes to <paramref name="unclaimed"/>, by
    /// default the wait, which finds it). Falls through when this CPU holds the claim, to <paramref name="lost"/> when
    /// another CPU's exchange came first.
    /// </summary>
    private void EmitClaim(SetLayout layout, int tag, string map, ulong timeout, bool takeover, string lost, string absent, string? unclaimed = null)
    {
        unclaimed ??= lost;
        EmitNewElement(layout, tag, timeout, ElementStatementCode.StatementsNotInOtherCopy);
        _asm.Emit(Asm.Call(HelperFunc.GetSmpProcessorId), Asm.Add64Imm(R0, ReplacementClaim.Base), Asm.StxW(R10, DynsetClaim, R0));
        EmitLookupCopy(map, Generation, absent);
        if (layout.HasPacketLimits)
        {
            EmitBucketKeyPad(layout);
            EmitLoadBorn(layout);
        }
        _asm.Emit(Asm.Mov64Reg(R1, R0), Asm.LdxDW(R0, R1, SetLayout.ExpiresOffset), Asm.Mov64Reg(R3, R0));
        if (takeover)
        {
            var claimed = _asm.NewLabel("dynclaimed");
            EmitJumpIfClaimed(R0, R2, claimed);
            _asm.Emit(Asm.Ja(unclaimed));
            _asm.Label(claimed);
        }
        else
        {
            // claimed meanwhile, or live again (another CPU's new element): the wait finds its element
            EmitJumpIfClaimed(R0, R2, unclaimed);
            _asm.Emit(Asm.JeqImm(R0, 0, unclaimed), Asm.LdxDW(R2, R10, UpdateNow), Asm.Sub64Reg(R2, R0), Asm.JumpImm(JumpOp.Jslt, R2, 0, unclaimed));
        }
        _asm.Emit(Asm.LdxW(R2, R10, DynsetClaim), Asm.AtomicCmpXchg64(R1, SetLayout.ExpiresOffset, R2), Asm.JneReg(R0, R3, lost));
    }
}
