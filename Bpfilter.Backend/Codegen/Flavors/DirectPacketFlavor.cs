using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// XDP and TC read the packet directly: R7 = data, R8 = data_end (in a subprogram read from ctx at each
/// access), and every access is bounds checked the way the verifier wants (pointer + constant compared with data_end).
/// </summary>
internal abstract class DirectPacketFlavor : IFlavor
{
    public abstract BpfProgType ProgramType { get; }
    public abstract BpfAttachType AttachType { get; }
    public abstract int AcceptCode { get; }
    public abstract int DropCode { get; }
    public abstract void EmitLog(Assembler asm, string ringBuffer, uint configId);
    public bool HasLinkLayer => true;
    public int? FixedEtherType => null;
    public abstract int? FixedNfProto { get; }
    public abstract bool LengthFromNetworkHeader { get; }
    protected abstract short DataOffset { get; }
    protected abstract short DataEndOffset { get; }

    public void EmitEntry(Assembler asm, bool needsPacket)
    {
        asm.Emit(Asm.Mov64Reg(R6, R1));
        if (!needsPacket) return;
        asm.Emit(Asm.LdxW(R7, R6, DataOffset));
        if (!InSubprogram) asm.Emit(Asm.LdxW(R8, R6, DataEndOffset));
    }

    public bool InSubprogram { get; set; }

    public abstract void EmitPacketSize(Assembler asm);

    public BytesRef EmitAccess(Assembler asm, short? baseSlot, int offset, int length, string fail)
    {
        if (offset < 0 || offset + length > short.MaxValue) throw new CodegenException($"packet offset {offset} out of range");
        asm.Emit(Asm.Mov64Reg(R1, R7));
        // Context values are deliberately imprecise for the verifier (see RuntimeContext): bound them.
        if (baseSlot is { } slot) asm.Emit(Asm.LdxW(R2, R10, slot), Asm.And64Imm(R2, RuntimeContext.MaxOffset), Asm.Add64Reg(R1, R2));
        asm.Emit(Asm.Mov64Reg(R2, R1), Asm.Add64Imm(R2, offset + length));
        // a subprogram's R8 is the frame pointer: data_end is read again (PTR_TO_PACKET_END all the same)
        if (InSubprogram) asm.Emit(Asm.LdxW(R3, R6, DataEndOffset), Asm.JgtReg(R2, R3, fail));
        else asm.Emit(Asm.JgtReg(R2, R8, fail));
        return new BytesRef(R1, (short)offset);
    }

    /// <summary>
    /// data_end: at tc the end of the skb's linear area (skb_tail_pointer) exactly; at XDP the end of
    /// the frame's first buffer, which for the frames a veth delivers (under a page, one buffer) is
    /// the whole frame, as linear as the skb the kernel builds for it.
    /// </summary>
    public void EmitLinearCheck(Assembler asm, short baseSlot, int end, string fail) => EmitAccess(asm, baseSlot, 0, end, fail);

    public abstract bool EmitMeta(Assembler asm, MetaKey key, Register dst, string fail);
    public abstract StaticName? StaticInterfaceName(MetaKey key);

    public BytesRef EmitInterfaceName(Assembler asm, MetaKey key, string fail) =>
        throw new CodegenException($"meta {key.ToString().ToLowerInvariant()} cannot be read at run time at {ProgramType} hooks");
}
