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
/// </summary>
internal sealed class NetfilterFlavor(bool ipv6, NfHookPoint point) : IFlavor
{
    /// <summary>Whether the entry made the skb dynptr (a log statement reuses it).</summary>
    bool _dynptr;

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
        if (!needsPacket) return;
        var ok = asm.NewLabel("dynptr_ok");
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, RuntimeContext.Dynptr),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_dynptr_from_skb")), Asm.JeqImm(R0, 0, ok),
            // Cannot happen with flags 0; without a dynptr nothing can be matched, so let the packet go on.
            Asm.Mov64Imm(R0, AcceptCode), Asm.Exit());
        asm.Label(ok);
    }

    public void EmitLog(Assembler asm, string ringBuffer, uint configId) =>
        Log.LogEmitter.EmitNetfilter(asm, R6, ringBuffer, configId, (byte)FixedNfProto!.Value, (byte)point, RuntimeContext.Dynptr, _dynptr);

    public void EmitPacketSize(Assembler asm) =>
        asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxW(R0, R1, Bytes("sk_buff", "len")), Asm.StxW(R10, RuntimeContext.PacketSize, R0));

    public BytesRef EmitAccess(Assembler asm, short? baseSlot, int offset, int length, string fail)
    {
        if (length > RuntimeContext.ScratchSize) throw new CodegenException($"a {length}-byte field is too wide");
        if (baseSlot is { } slot) asm.Emit(Asm.LdxW(R4, R10, slot), Asm.Add64Imm(R4, offset));
        else asm.Emit(Asm.Mov64Imm(R4, offset));
        asm.Emit(Asm.Mov64Reg(R1, R10), Asm.Add64Imm(R1, RuntimeContext.Scratch), Asm.Mov64Imm(R2, length),
            Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, RuntimeContext.Dynptr), Asm.Mov64Imm(R5, 0),
            Asm.Call(HelperFunc.DynptrRead), Asm.JneImm(R0, 0, fail));
        return new BytesRef(R10, RuntimeContext.Scratch);
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
