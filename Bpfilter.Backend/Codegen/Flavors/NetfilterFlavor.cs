using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// BPF_PROG_TYPE_NETFILTER: ctx is struct bpf_nf_ctx { state, skb }. Packet bytes (from the network
/// header) are read with a skb dynptr (kfunc bpf_dynptr_from_skb, helper bpf_dynptr_read) into a
/// stack scratch buffer; metadata is read through the BTF pointers state and skb with member offsets
/// from the running kernel's BTF. One program serves one protocol family (inet chains get two).
/// accept = NF_ACCEPT, drop = NF_DROP.
/// Each bpf_dynptr_read is a helper call that copies from the skb: the entry copies the first
/// <see cref="RuntimeContext.L3CacheSize"/> bytes of the network header to the stack once, and after parsing
/// the first <see cref="RuntimeContext.L4CacheSize"/> bytes of the transport header (from that copy when the
/// network header has no options or extension headers, else with a second read); reads inside those
/// copies are stack loads behind a length check that fails exactly where bpf_dynptr_read would. Where the kernel
/// allows loads through skb->data (<see cref="SkbDataRead"/>) the entry's copy is eight plain loads when the skb's
/// linear area holds it (the usual case), the helper only for a paged skb.
/// </summary>
/// <param name="directRead">Copy the network header with loads through skb->data when the linear area holds it
/// (<see cref="SkbDataRead.Available"/>), not with bpf_dynptr_read.</param>
internal sealed class NetfilterFlavor(bool ipv6, NfHookPoint point, bool directRead) : IFlavor
{
    /// <summary>Whether the entry made the skb dynptr (a log statement reuses it) and copied the network header.</summary>
    bool _dynptr;
    /// <summary>Whether the entry made the skb dynptr; else each read that needs it makes it first (<see cref="DynptrOnDemand"/>).</summary>
    bool _dynptrAtEntry;

    /// <summary>
    /// Set by the compiler when no subprogram can read the packet (no regular chains): with
    /// <c>directRead</c> the entry then makes no dynptr (the kfunc alone costs about as much as the rest of the
    /// entry), and the rarer reads that need one (a paged skb, bytes past the copies, IP options, log) make it
    /// just before. Subprograms read the base program's dynptr in its frame, so with them it is made at entry.
    /// </summary>
    public bool DynptrOnDemand { get; set; }
    /// <summary>Whether the prologue copied the start of the transport header (<see cref="EmitParsed"/>).</summary>
    bool _transportCopied;

    public bool InSubprogram { get; set; }

    public BpfProgType ProgramType => BpfProgType.Netfilter;
    public BpfAttachType AttachType => BpfAttachType.Netfilter;
    public int AcceptCode => 1;
    public int DropCode => 0;
    public bool HasLinkLayer => false;
    public int? FixedEtherType => ipv6 ? RuntimeContext.EtherTypeIpv6 : RuntimeContext.EtherTypeIpv4;
    public int? FixedNfProto => ipv6 ? 10 : 2;
    public bool LengthFromNetworkHeader => false;

    private static short Bytes(string s, string m) => (short)(VmlinuxBtf.Member(s, m).BitOffset / 8);

    public void EmitEntry(Assembler asm, bool needsPacket)
    {
        asm.Emit(Asm.Mov64Reg(R6, R1));
        if (InSubprogram) return; // the base program's dynptr, in its frame
        _dynptr = needsPacket;
        _dynptrAtEntry = needsPacket && !(directRead && DynptrOnDemand);
        if (!needsPacket) return;
        if (!_dynptrAtEntry)
        {
            asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxW(R2, R1, Bytes("sk_buff", "len")));
            EmitLinearCopy(asm);
            return;
        }
        var ok = asm.NewLabel("dynptr_ok");
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, RuntimeContext.Dynptr),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_dynptr_from_skb")), Asm.JeqImm(R0, 0, ok),
            // Cannot happen with flags 0; without a dynptr nothing can be matched, so let the packet go on.
            Asm.Mov64Imm(R0, AcceptCode), Asm.Exit());
        asm.Label(ok);
        // the network header starts the skb's data (the dynptr's offset 0): copy min(L3CacheSize, skb->len) bytes
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxW(R2, R1, Bytes("sk_buff", "len")));
        if (directRead) EmitLinearCopy(asm);
        else EmitCopy(asm, RuntimeContext.L3Cache, RuntimeContext.L3CacheSize, RuntimeContext.L3CacheLen, R2, offsetSlot: null);
    }

    /// <summary>
    /// The entry's copy without a helper call when the skb's linear area (skb_headlen = len - data_len, where the
    /// dynptr reads with a plain memcpy too) holds all min(L3CacheSize, len) bytes: eight 8-byte loads through
    /// skb->data (R1 = skb, R2 = len). Else (a paged skb whose linear area is shorter) bpf_dynptr_read as before.
    /// The loads may read past the packet's end (within the skb's head buffer; probe loads in any case): those
    /// bytes are never used, as every read of the copy checks <see cref="RuntimeContext.L3CacheLen"/> first.
    /// </summary>
    private void EmitLinearCopy(Assembler asm)
    {
        var fits = asm.NewLabel("l3_fits");
        var paged = asm.NewLabel("l3_paged");
        var done = asm.NewLabel("l3_copied");
        asm.Emit(Asm.JleImm(R2, RuntimeContext.L3CacheSize, fits), Asm.Mov64Imm(R2, RuntimeContext.L3CacheSize));
        asm.Label(fits);
        asm.Emit(Asm.LdxW(R0, R1, Bytes("sk_buff", "len")), Asm.LdxW(R3, R1, Bytes("sk_buff", "data_len")), Asm.Sub64Reg(R0, R3),
            Asm.JltReg(R0, R2, paged), Asm.StxW(R10, RuntimeContext.L3CacheLen, R2), Asm.LdxDW(R4, R1, Bytes("sk_buff", "data")));
        for (var i = 0; i < RuntimeContext.L3CacheSize; i += 8)
            asm.Emit(Asm.LdxDW(R0, R4, (short)i), Asm.StxDW(R10, (short)(RuntimeContext.L3Cache + i), R0));
        asm.Emit(Asm.Ja(done));
        asm.Label(paged);
        if (!_dynptrAtEntry)
        {
            asm.Emit(Asm.StxW(R10, RuntimeContext.L3CacheLen, R2));
            EmitMakeDynptr(asm);
            asm.Emit(Asm.LdxW(R2, R10, RuntimeContext.L3CacheLen));
        }
        EmitCopy(asm, RuntimeContext.L3Cache, RuntimeContext.L3CacheSize, RuntimeContext.L3CacheLen, R2, offsetSlot: null);
        asm.Label(done);
    }

    public void EmitParsed(Assembler asm, bool readsTransport)
    {
        _transportCopied = _dynptr && readsTransport;
        if (!_transportCopied) return;
        // behind a header without options the transport bytes are already in the network header's copy:
        // copied within the stack (min(L3 bytes - header, L4CacheSize) of them), no second helper call
        var header = ipv6 ? 40 : 20;
        var read = asm.NewLabel("l4_read");
        var done = asm.NewLabel("l4_done");
        var some = asm.NewLabel("l4_some");
        asm.Emit(Asm.LdxW(R1, R10, RuntimeContext.L4Off), Asm.JneImm(R1, header, read),
            Asm.LdxW(R2, R10, RuntimeContext.L3CacheLen), Asm.Add64Imm(R2, -header), Asm.JumpImm(JumpOp.Jsgt, R2, 0, some), Asm.Mov64Imm(R2, 0));
        asm.Label(some);
        using (asm.SkipIf(l => Asm.JleImm(R2, RuntimeContext.L4CacheSize, l)))
            asm.Emit(Asm.Mov64Imm(R2, RuntimeContext.L4CacheSize));
        asm.Emit(Asm.StxW(R10, RuntimeContext.L4CacheLen, R2));
        for (var i = 0; i < RuntimeContext.L4CacheSize; i += 4)
            asm.Emit(Asm.LdxW(R0, R10, (short)(RuntimeContext.L3Cache + header + i)), Asm.StxW(R10, (short)(RuntimeContext.L4Cache + i), R0));
        asm.Emit(Asm.Ja(done));
        // elsewhere: bytes from L4Off to the end of the skb (none when L4Off is past it)
        asm.Label(read);
        if (!_dynptrAtEntry)
        {
            EmitMakeDynptr(asm);
            asm.Emit(Asm.LdxW(R1, R10, RuntimeContext.L4Off));
        }
        var copy = asm.NewLabel("l4_copy");
        asm.Emit(Asm.LdxW(R2, R10, RuntimeContext.PacketSize), Asm.Sub64Reg(R2, R1),
            Asm.JumpImm(JumpOp.Jsgt, R2, 0, copy), Asm.Mov64Imm(R2, 0));
        asm.Label(copy);
        EmitCopy(asm, RuntimeContext.L4Cache, RuntimeContext.L4CacheSize, RuntimeContext.L4CacheLen, R2, RuntimeContext.L4Off);
        asm.Label(done);
    }

    /// <summary>
    /// Copies min(<paramref name="size"/>, <paramref name="available"/>) bytes at (<paramref name="offsetSlot"/>'s value, or 0)
    /// to <paramref name="cache"/> and stores how many at <paramref name="lengthSlot"/> (0 if the read failed).
    /// The cache is zeroed first, so every byte of it is initialised for the verifier.
    /// </summary>
    private static void EmitCopy(Assembler asm, short cache, int size, short lengthSlot, Register available, short? offsetSlot)
    {
        var fits = asm.NewLabel("cache_fits");
        var done = asm.NewLabel("cache_done");
        asm.Emit(Asm.JleImm(available, size, fits), Asm.Mov64Imm(available, size));
        asm.Label(fits);
        asm.Emit(Asm.StxW(R10, lengthSlot, available));
        for (var i = 0; i < size; i += 8) asm.Emit(Asm.StDW(R10, (short)(cache + i), 0));
        if (offsetSlot is { } slot) asm.Emit(Asm.LdxW(R4, R10, slot)); else asm.Emit(Asm.Mov64Imm(R4, 0));
        asm.Emit(Asm.Mov64Reg(R1, R10), Asm.Add64Imm(R1, cache), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, RuntimeContext.Dynptr),
            Asm.Mov64Imm(R5, 0), Asm.Call(HelperFunc.DynptrRead), Asm.JeqImm(R0, 0, done), Asm.StW(R10, lengthSlot, 0));
        asm.Label(done);
    }

    /// <summary>
    /// Makes the skb dynptr where a read needs it (clobbers R0-R5). With flags 0 it cannot fail; if it did, the
    /// dynptr is null, the read after it fails and the rule does not match on those bytes.
    /// </summary>
    private static void EmitMakeDynptr(Assembler asm) =>
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, RuntimeContext.Dynptr),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_dynptr_from_skb")));

    public void EmitLog(Assembler asm, string ringBuffer, uint configId) =>
        Log.LogEmitter.EmitNetfilter(asm, R6, ringBuffer, configId, (byte)FixedNfProto!.Value, (byte)point, RuntimeContext.Dynptr, _dynptrAtEntry);

    public void EmitPacketSize(Assembler asm) =>
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxW(R0, R1, Bytes("sk_buff", "len")), Asm.StxW(R10, RuntimeContext.PacketSize, R0));

    public BytesRef EmitAccess(Assembler asm, short? baseSlot, int offset, int length, string fail)
    {
        if (length > RuntimeContext.ScratchSize) throw new CodegenException($"a {length}-byte field is too wide");
        // inside a copy: readable when the copy holds its last byte (as many as the skb has, up to the copy's size)
        if (_dynptr && offset >= 0 && (baseSlot is null or RuntimeContext.L3Off) && offset + length <= RuntimeContext.L3CacheSize)
            return Cached(asm, RuntimeContext.L3Cache, RuntimeContext.L3CacheLen, offset, length, fail);
        if (_transportCopied && offset >= 0 && baseSlot == RuntimeContext.L4Off && offset + length <= RuntimeContext.L4CacheSize)
            return Cached(asm, RuntimeContext.L4Cache, RuntimeContext.L4CacheLen, offset, length, fail);
        if (!_dynptrAtEntry) EmitMakeDynptr(asm);
        if (baseSlot is { } slot) asm.Emit(Asm.LdxW(R4, R10, slot), Asm.Add64Imm(R4, offset));
        else asm.Emit(Asm.Mov64Imm(R4, offset));
        asm.Emit(Asm.Mov64Reg(R1, R10), Asm.Add64Imm(R1, RuntimeContext.Scratch), Asm.Mov64Imm(R2, length),
            Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, RuntimeContext.Dynptr), Asm.Mov64Imm(R5, 0),
            Asm.Call(HelperFunc.DynptrRead), Asm.JneImm(R0, 0, fail));
        return new BytesRef(R10, RuntimeContext.Scratch);
    }

    private static BytesRef Cached(Assembler asm, short cache, short lengthSlot, int offset, int length, string fail)
    {
        asm.Emit(Asm.LdxW(R0, R10, lengthSlot), Asm.JltImm(R0, offset + length, fail));
        return new BytesRef(R10, (short)(cache + offset));
    }

    /// <summary>The linear area is skb_headlen = len - data_len bytes from skb->data, where the dynptr starts.</summary>
    public void EmitLinearCheck(Assembler asm, short baseSlot, int end, string fail) =>
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxW(R0, R1, Bytes("sk_buff", "len")), Asm.LdxW(R2, R1, Bytes("sk_buff", "data_len")),
            Asm.Sub64Reg(R0, R2), Asm.LdxW(R3, R10, baseSlot), Asm.Add64Imm(R3, end), Asm.JgtReg(R3, R0, fail));

    public bool EmitMeta(Assembler asm, MetaKey key, Register dst, string fail)
    {
        switch (key)
        {
            case MetaKey.Iif:
            case MetaKey.Oif:
                asm.Emit(Asm.LdxDW(R1, R6, 0), Asm.LdxDW(R1, R1, Bytes("nf_hook_state", key == MetaKey.Iif ? "in" : "out")),
                    Asm.JeqImm(R1, 0, fail), Asm.LdxW(dst, R1, Bytes("net_device", "ifindex")));
                return true;
            case MetaKey.Mark:
                asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxW(dst, R1, Bytes("sk_buff", "mark")));
                return true;
            case MetaKey.PktType:
            {
                var (bit, size) = VmlinuxBtf.Member("sk_buff", "pkt_type");
                asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxB(dst, R1, (short)(bit / 8)));
                if (bit % 8 != 0) asm.Emit(Asm.Rsh64Imm(dst, bit % 8));
                asm.Emit(Asm.And64Imm(dst, (1 << (size == 0 ? 3 : size)) - 1));
                return true;
            }
            default:
                return false;
        }
    }

    public StaticName? StaticInterfaceName(MetaKey key) => null;

    public BytesRef EmitInterfaceName(Assembler asm, MetaKey key, string fail)
    {
        asm.Emit(Asm.LdxDW(R1, R6, 0), Asm.LdxDW(R1, R1, Bytes("nf_hook_state", key == MetaKey.IifName ? "in" : "out")),
            Asm.JeqImm(R1, 0, fail));
        return new BytesRef(R1, Bytes("net_device", "name"));
    }
}
