using System.Text;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;
using E = Bpfilter.Backend.Log.LogEvent;

namespace Bpfilter.Backend.Log;

/// <summary>
/// Emits the BPF code of one `log` statement: reserve a <see cref="LogEvent"/> in the ring buffer
/// map, fill it from the context, the skb and the packet, submit it. The record is built in ring
/// buffer memory (bpf_ringbuf_reserve), not on the 512-byte stack, and packet bytes are copied with
/// the helpers both program types allow: bpf_xdp_load_bytes for XDP (direct packet pointers cannot
/// be passed to bpf_ringbuf_output), bpf_dynptr_read over an skb dynptr for BPF_NETFILTER, whose
/// skb is only reachable through BTF pointers; the MAC header, which lies before skb->data there,
/// is read with bpf_probe_read_kernel from skb->head + skb->mac_header.
/// When the ring buffer is full the event is lost (the reservation fails) and the packet goes on.
/// Register use: the context must be in the given register (R6 by the code generator's
/// convention); R0-R5 and R9 are clobbered; R6-R8 and the stack outside the dynptr slot are kept.
/// </summary>
public static class LogEmitter
{
    /// <summary>Ring buffer size: 2048 events of 360 bytes (record + 8-byte header).</summary>
    public const int DefaultRingBufferSize = 1 << 20;

    /// <summary>NF_NETDEV_INGRESS and NFPROTO_NETDEV: what an XDP program's events say.</summary>
    public const byte NetdevIngressHook = 0, NfProtoNetdev = 5;

    public static BpfMap CreateRingBuffer(string name, int size = DefaultRingBufferSize) =>
        BpfMap.Create(BpfMapType.RingBuf, name, 0, 0, size);

    private const short HeaderBytes = E.OffMac;

    /// <summary>
    /// XDP on Ethernet device <paramref name="device"/>: the event of nft's netdev ingress hook
    /// (family netdev, IN=device, MAC header = the first 14 bytes, network header after it, an outer
    /// VLAN tag taken out as the kernel does before that hook).
    /// </summary>
    public static void EmitXdp(Assembler asm, Register ctx, string ringBuffer, uint configId, string device)
    {
        var end = asm.NewLabel("log_end");
        var submit = asm.NewLabel("log_submit");
        Reserve(asm, ringBuffer, end);
        asm.Emit(Asm.StW(R9, E.OffConfigId, (int)configId), Asm.StB(R9, E.OffHook, NetdevIngressHook), Asm.StB(R9, E.OffFamily, NfProtoNetdev),
            Asm.StH(R9, E.OffFlags, (int)(LogEventFlags.HasIn | LogEventFlags.MacHeaderSet)),
            Asm.StH(R9, E.OffDevType, 1), Asm.StH(R9, E.OffHardHeaderLen, 14), Asm.StH(R9, E.OffMacHeaderLen, 14));
        StoreName(asm, E.OffInName, device);

        asm.Emit(Asm.Mov64Reg(R1, ctx), Asm.Call(HelperFunc.XdpGetBuffLen), Asm.JltImm(R0, 14, submit),
            Asm.Add64Imm(R0, -14), Asm.StxW(R9, E.OffNetworkLength, R0));
        // MAC header, and skb->protocol as eth_type_trans sets it from it.
        asm.Emit(Asm.Mov64Reg(R1, ctx), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R9), Asm.Add64Imm(R3, E.OffMac), Asm.Mov64Imm(R4, 14),
            Asm.Call(HelperFunc.XdpLoadBytes), Asm.JneImm(R0, 0, submit),
            Asm.StH(R9, E.OffMacLength, 14),
            Asm.LdxB(R1, R9, E.OffMac + 12), Asm.Lsh64Imm(R1, 8), Asm.LdxB(R2, R9, E.OffMac + 13), Asm.Or64Reg(R1, R2),
            Asm.StxH(R9, E.OffProtocol, R1));
        Untag(asm, ctx);
        asm.Emit(Asm.LdxW(R4, R9, E.OffNetworkLength));
        ClampCaptureLength(asm, R4, E.PacketCapacity, submit);
        // The network header follows the Ethernet header, or the tag when one was taken out.
        asm.Emit(Asm.LdxH(R2, R9, E.OffFlags), Asm.And64Imm(R2, (int)LogEventFlags.VlanPresent));
        using (asm.SkipIf(l => Asm.JeqImm(R2, 0, l)))
            asm.Emit(Asm.Mov64Imm(R2, 4));
        asm.Emit(Asm.Add64Imm(R2, 14));
        asm.Emit(Asm.StxH(R9, E.OffPacketLength, R4), Asm.Mov64Reg(R1, ctx), Asm.Mov64Reg(R3, R9),
            Asm.Add64Imm(R3, E.OffPacket), Asm.Call(HelperFunc.XdpLoadBytes), Asm.JeqImm(R0, 0, submit),
            Asm.StH(R9, E.OffPacketLength, 0));
        Submit(asm, submit, end);
    }

    /// <summary>
    /// What skb_vlan_untag does before netdev ingress, on the event: an outer 802.1Q/802.1ad tag (R1 =
    /// the frame's EtherType) goes to VlanProto/VlanTci, the MAC header's EtherType and skb->protocol
    /// become the encapsulated one and the network header moves 4 bytes on. Only one tag, like the kernel.
    /// </summary>
    private static void Untag(Assembler asm, Register ctx)
    {
        var tagged = asm.NewLabel("log_vlan");
        var done = asm.NewLabel("log_novlan");
        asm.Emit(Asm.JeqImm(R1, 0x8100, tagged), Asm.JneImm(R1, 0x88a8, done));
        asm.Label(tagged);
        asm.Emit(Asm.LdxW(R0, R9, E.OffNetworkLength), Asm.JltImm(R0, 4, done), Asm.StxH(R9, E.OffVlanProto, R1),
            Asm.Mov64Reg(R1, ctx), Asm.Mov64Imm(R2, 14), Asm.Mov64Reg(R3, R9), Asm.Add64Imm(R3, E.OffPacket), Asm.Mov64Imm(R4, 4),
            Asm.Call(HelperFunc.XdpLoadBytes), Asm.JneImm(R0, 0, done),
            Asm.LdxH(R1, R9, E.OffPacket), Asm.ToBigEndian(R1, 16), Asm.StxH(R9, E.OffVlanTci, R1),
            Asm.LdxH(R1, R9, E.OffPacket + 2), Asm.StxH(R9, E.OffMac + 12, R1), Asm.ToBigEndian(R1, 16), Asm.StxH(R9, E.OffProtocol, R1),
            Asm.LdxW(R0, R9, E.OffNetworkLength), Asm.Add64Imm(R0, -4), Asm.StxW(R9, E.OffNetworkLength, R0),
            Asm.LdxH(R1, R9, E.OffFlags), Asm.Alu64Imm(AluOp.Or, R1, (int)LogEventFlags.VlanPresent), Asm.StxH(R9, E.OffFlags, R1));
        asm.Label(done);
    }

    /// <summary>
    /// tc (tcx) program on Ethernet device <paramref name="device"/> (ctx = struct __sk_buff): the event of
    /// nft's netdev ingress or egress hook on it. At ingress IN=device and the MAC header is printed; at
    /// egress OUT=device and skb->data is at the MAC header, which nf_log's output reflects
    /// (<see cref="LogEventFlags.LinkLayerInData"/>). VLAN tags the kernel holds out of band come from
    /// the __sk_buff fields. UID/GID are not filled: a tc program cannot reach the socket file's
    /// credentials, so `log flags skuid` must not be compiled here (the kernel prints them at netdev
    /// egress for IPv6 only).
    /// </summary>
    public static void EmitTc(Assembler asm, Register ctx, string ringBuffer, uint configId, string device, bool ingress)
    {
        var end = asm.NewLabel("log_end");
        var submit = asm.NewLabel("log_submit");
        Reserve(asm, ringBuffer, end);
        var flags = LogEventFlags.MacHeaderSet | (ingress ? LogEventFlags.HasIn : LogEventFlags.HasOut | LogEventFlags.LinkLayerInData);
        asm.Emit(Asm.StW(R9, E.OffConfigId, (int)configId), Asm.StB(R9, E.OffHook, NetdevIngressHook + (ingress ? 0 : 1)),
            Asm.StB(R9, E.OffFamily, NfProtoNetdev),
            Asm.StH(R9, E.OffDevType, 1), Asm.StH(R9, E.OffHardHeaderLen, 14), Asm.StH(R9, E.OffMacHeaderLen, 14));
        StoreName(asm, (short)(ingress ? E.OffInName : E.OffOutName), device);
        // __sk_buff: len 0, mark 8, protocol 16, vlan_present 20, vlan_tci 24, vlan_proto 28.
        asm.Emit(Asm.LdxW(R1, ctx, 8), Asm.StxW(R9, E.OffMark, R1),
            Asm.LdxW(R1, ctx, 16), Asm.ToBigEndian(R1, 16), Asm.StxH(R9, E.OffProtocol, R1),
            Asm.LdxW(R1, ctx, 24), Asm.StxH(R9, E.OffVlanTci, R1),
            Asm.LdxW(R1, ctx, 28), Asm.ToBigEndian(R1, 16), Asm.StxH(R9, E.OffVlanProto, R1),
            Asm.Mov64Imm(R2, (int)flags), Asm.LdxW(R1, ctx, 20));
        using (asm.SkipIf(l => Asm.JeqImm(R1, 0, l)))
            asm.Emit(Asm.Alu64Imm(AluOp.Or, R2, (int)LogEventFlags.VlanPresent));
        asm.Emit(Asm.StxH(R9, E.OffFlags, R2));

        asm.Emit(Asm.LdxW(R0, ctx, 0), Asm.JltImm(R0, 14, submit), Asm.Add64Imm(R0, -14), Asm.StxW(R9, E.OffNetworkLength, R0));
        asm.Emit(Asm.Mov64Reg(R1, ctx), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R9), Asm.Add64Imm(R3, E.OffMac), Asm.Mov64Imm(R4, 14),
            Asm.Call(HelperFunc.SkbLoadBytes), Asm.JneImm(R0, 0, submit), Asm.StH(R9, E.OffMacLength, 14));
        asm.Emit(Asm.LdxW(R4, R9, E.OffNetworkLength));
        ClampCaptureLength(asm, R4, E.PacketCapacity, submit);
        asm.Emit(Asm.StxH(R9, E.OffPacketLength, R4), Asm.Mov64Reg(R1, ctx), Asm.Mov64Imm(R2, 14), Asm.Mov64Reg(R3, R9),
            Asm.Add64Imm(R3, E.OffPacket), Asm.Call(HelperFunc.SkbLoadBytes), Asm.JeqImm(R0, 0, submit),
            Asm.StH(R9, E.OffPacketLength, 0));
        Submit(asm, submit, end);
    }

    /// <summary>
    /// BPF_NETFILTER (ctx = struct bpf_nf_ctx { state, skb }) at <paramref name="hook"/> of protocol family
    /// <paramref name="family"/> (NFPROTO_IPV4 2 / NFPROTO_IPV6 10). <paramref name="dynptrSlot"/> is a
    /// 16-byte, 8-aligned stack slot (offset from R10) for the skb dynptr; with <paramref name="dynptrReady"/>
    /// the program already made one there (the code generator's prologue does), else it is made here.
    /// </summary>
    public static void EmitNetfilter(Assembler asm, Register ctx, string ringBuffer, uint configId, byte family, byte hook,
        short dynptrSlot, bool dynptrReady)
    {
        var end = asm.NewLabel("log_end");
        var submit = asm.NewLabel("log_submit");
        Reserve(asm, ringBuffer, end);
        asm.Emit(Asm.StW(R9, E.OffConfigId, (int)configId), Asm.StB(R9, E.OffHook, hook), Asm.StB(R9, E.OffFamily, family));

        // Everything read without a helper call first, the flags accumulating in R5.
        asm.Emit(Asm.Mov64Imm(R5, 0), Asm.LdxDW(R1, ctx, 8)); // R1 = skb
        asm.Emit(Asm.LdxW(R2, R1, Off("sk_buff", "mark")), Asm.StxW(R9, E.OffMark, R2),
            Asm.LdxW(R2, R1, Off("sk_buff", "len")), Asm.StxW(R9, E.OffNetworkLength, R2),
            Asm.LdxH(R2, R1, Off("sk_buff", "protocol")), Asm.ToBigEndian(R2, 16), Asm.StxH(R9, E.OffProtocol, R2),
            Asm.LdxH(R2, R1, Off("sk_buff", "vlan_proto")), Asm.ToBigEndian(R2, 16), Asm.StxH(R9, E.OffVlanProto, R2),
            Asm.LdxH(R2, R1, Off("sk_buff", "vlan_tci")), Asm.StxH(R9, E.OffVlanTci, R2),
            Asm.LdxW(R2, R1, Off("sk_buff", "vlan_all")));
        using (asm.SkipIf(l => Asm.JeqImm(R2, 0, l)))
            asm.Emit(Asm.Alu64Imm(AluOp.Or, R5, (int)LogEventFlags.VlanPresent));

        asm.Emit(Asm.LdxDW(R2, R1, Off("sk_buff", "dev")));
        using (asm.SkipIf(l => Asm.JeqImm(R2, 0, l)))
            asm.Emit(Asm.LdxH(R3, R2, Off("net_device", "type")), Asm.StxH(R9, E.OffDevType, R3),
                Asm.LdxH(R3, R2, Off("net_device", "hard_header_len")), Asm.StxH(R9, E.OffHardHeaderLen, R3));

        asm.Emit(Asm.LdxDW(R0, ctx, 0)); // R0 = state
        DeviceName(asm, "in", E.OffInName, LogEventFlags.HasIn);
        DeviceName(asm, "out", E.OffOutName, LogEventFlags.HasOut);

        asm.Emit(Asm.LdxH(R2, R1, Off("sk_buff", "mac_header")));
        using (asm.SkipIf(l => Asm.JeqImm(R2, 0xffff, l)))
            asm.Emit(Asm.Alu64Imm(AluOp.Or, R5, (int)LogEventFlags.MacHeaderSet),
                Asm.LdxH(R3, R1, Off("sk_buff", "network_header")), Asm.Sub64Reg(R3, R2), Asm.StxH(R9, E.OffMacHeaderLen, R3));

        SocketCredentials(asm);
        asm.Emit(Asm.StxH(R9, E.OffFlags, R5));

        // MAC header: dev->hard_header_len bytes from skb->head + skb->mac_header, as MAC= prints them.
        var noMac = asm.NewLabel("log_nomac");
        asm.Emit(Asm.LdxH(R1, R9, E.OffFlags), Asm.And64Imm(R1, (int)LogEventFlags.MacHeaderSet), Asm.JeqImm(R1, 0, noMac),
            Asm.LdxDW(R1, ctx, 8), Asm.LdxDW(R3, R1, Off("sk_buff", "head")), Asm.LdxH(R2, R1, Off("sk_buff", "mac_header")),
            Asm.Add64Reg(R3, R2), Asm.LdxH(R2, R9, E.OffHardHeaderLen));
        ClampCaptureLength(asm, R2, E.MacCapacity, noMac);
        asm.Emit(Asm.StxH(R9, E.OffMacLength, R2), Asm.Mov64Reg(R1, R9), Asm.Add64Imm(R1, E.OffMac),
            Asm.Call(HelperFunc.ProbeReadKernel), Asm.JeqImm(R0, 0, noMac), Asm.StH(R9, E.OffMacLength, 0));
        asm.Label(noMac);

        if (!dynptrReady)
            asm.Emit(Asm.LdxDW(R1, ctx, 8), Asm.Mov64Imm(R2, 0), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, dynptrSlot),
                Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_dynptr_from_skb")), Asm.JneImm(R0, 0, submit));
        asm.Emit(Asm.LdxW(R2, R9, E.OffNetworkLength));
        ClampCaptureLength(asm, R2, E.PacketCapacity, submit);
        asm.Emit(Asm.StxH(R9, E.OffPacketLength, R2), Asm.Mov64Reg(R1, R9), Asm.Add64Imm(R1, E.OffPacket),
            Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, dynptrSlot), Asm.Mov64Imm(R4, 0), Asm.Mov64Imm(R5, 0),
            Asm.Call(HelperFunc.DynptrRead), Asm.JeqImm(R0, 0, submit), Asm.StH(R9, E.OffPacketLength, 0));
        Submit(asm, submit, end);
    }

    /// <summary>R0 = state, R1 = skb, R5 = flags: copies state-&gt;in/out-&gt;name when the device is there.</summary>
    private static void DeviceName(Assembler asm, string member, short offset, LogEventFlags flag)
    {
        var name = Off("net_device", "name");
        asm.Emit(Asm.LdxDW(R2, R0, Off("nf_hook_state", member)));
        using (asm.SkipIf(l => Asm.JeqImm(R2, 0, l)))
            asm.Emit(Asm.Alu64Imm(AluOp.Or, R5, (int)flag), Asm.LdxDW(R3, R2, name), Asm.StxDW(R9, offset, R3),
                Asm.LdxDW(R3, R2, (short)(name + 8)), Asm.StxDW(R9, (short)(offset + 8), R3));
    }

    /// <summary>
    /// nf_log_dump_sk_uid_gid: skb-&gt;sk must be a full socket (not TIME_WAIT or NEW_SYN_RECV) of the
    /// hook's namespace with a file; UID/GID are that file's fsuid/fsgid (kernel-global ids, as
    /// from_kuid_munged(&amp;init_user_ns) gives them). R0 = state, R1 = skb, R5 = flags.
    /// </summary>
    private static void SocketCredentials(Assembler asm)
    {
        var skip = asm.NewLabel("log_nosk");
        var common = Off("sock", "__sk_common");
        asm.Emit(Asm.LdxDW(R2, R1, Off("sk_buff", "sk")), Asm.JeqImm(R2, 0, skip),
            Asm.LdxB(R3, R2, (short)(common + Off("sock_common", "skc_state"))),
            Asm.JeqImm(R3, 6 /* TCP_TIME_WAIT */, skip), Asm.JeqImm(R3, 12 /* TCP_NEW_SYN_RECV */, skip),
            Asm.LdxDW(R3, R2, (short)(common + Off("sock_common", "skc_net"))), Asm.LdxDW(R4, R0, Off("nf_hook_state", "net")),
            Asm.JneReg(R3, R4, skip),
            Asm.LdxDW(R2, R2, Off("sock", "sk_socket")), Asm.JeqImm(R2, 0, skip),
            Asm.LdxDW(R2, R2, Off("socket", "file")), Asm.JeqImm(R2, 0, skip),
            Asm.LdxDW(R2, R2, Off("file", "f_cred")), Asm.JeqImm(R2, 0, skip),
            Asm.LdxW(R3, R2, Off("cred", "fsuid")), Asm.StxW(R9, E.OffUid, R3),
            Asm.LdxW(R3, R2, Off("cred", "fsgid")), Asm.StxW(R9, E.OffGid, R3),
            Asm.Alu64Imm(AluOp.Or, R5, (int)LogEventFlags.UidValid));
        asm.Label(skip);
    }

    private static void Reserve(Assembler asm, string ringBuffer, string end)
    {
        asm.Emit(Asm.LoadMapFd(R1, ringBuffer), Asm.Mov64Imm(R2, E.Size), Asm.Mov64Imm(R3, 0), Asm.Call(HelperFunc.RingbufReserve),
            Asm.JeqImm(R0, 0, end), Asm.Mov64Reg(R9, R0));
        for (short off = 0; off < HeaderBytes; off += 8) asm.Emit(Asm.StDW(R9, off, 0));
    }

    private static void Submit(Assembler asm, string submit, string end)
    {
        asm.Label(submit);
        asm.Emit(Asm.Mov64Reg(R1, R9), Asm.Mov64Imm(R2, 0), Asm.Call(HelperFunc.RingbufSubmit));
        asm.Label(end);
    }

    /// <summary>reg = min(reg, capacity), jumping to <paramref name="none"/> when it is 0 (helpers want a non-zero, bounded size).</summary>
    private static void ClampCaptureLength(Assembler asm, Register reg, int capacity, string none)
    {
        using (asm.SkipIf(l => Asm.JleImm(reg, capacity, l)))
            asm.Emit(Asm.Mov64Imm(reg, capacity));
        asm.Emit(Asm.JeqImm(reg, 0, none));
    }

    private static void StoreName(Assembler asm, short offset, string name)
    {
        var bytes = new byte[E.NameSize];
        if (Encoding.ASCII.GetByteCount(name) >= E.NameSize) throw new ArgumentException($"device name '{name}' is too long");
        Encoding.ASCII.GetBytes(name, bytes);
        for (var i = 0; i < E.NameSize; i += 4)
            asm.Emit(Asm.StW(R9, (short)(offset + i), BitConverter.ToInt32(bytes, i)));
    }

    private static short Off(string structName, string member)
    {
        var (bits, _) = VmlinuxBtf.Member(structName, member);
        return (short)(bits / 8);
    }
}
