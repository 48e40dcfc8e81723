using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>netdev ingress as XDP: accept = XDP_PASS, drop = XDP_DROP.</summary>
internal sealed class XdpFlavor(string device, bool ipOnly) : DirectPacketFlavor
{
    public override BpfProgType ProgramType => BpfProgType.Xdp;
    public override BpfAttachType AttachType => BpfAttachType.Xdp;
    public override int AcceptCode => 2;
    public override int DropCode => 1;
    public override int? FixedNfProto => ipOnly ? null : 5;
    public override bool LengthFromNetworkHeader => true;
    protected override short DataOffset => 0;
    protected override short DataEndOffset => 4;

    public override void EmitLog(Assembler asm, string ringBuffer, uint configId) =>
        Log.LogEmitter.EmitXdp(asm, R6, ringBuffer, configId, device);

    public override void EmitPacketSize(Assembler asm) =>
        asm.Emit(Asm.Mov64Reg(R1, R6), Asm.Call(HelperFunc.XdpGetBuffLen), Asm.StxW(R10, RuntimeContext.PacketSize, R0));

    public override bool EmitMeta(Assembler asm, MetaKey key, Register dst, string fail)
    {
        switch (key)
        {
            case MetaKey.Iif:
                asm.Emit(Asm.LdxW(dst, R6, 12)); // xdp_md.ingress_ifindex
                return true;
            case MetaKey.Oif:
                asm.Emit(Asm.Ja(fail)); // no output interface at ingress: nf_tables breaks
                return true;
            case MetaKey.PktType:
                EmitPktType(asm, dst, fail);
                return true;
            default:
                return false; // mark: no skb yet
        }
    }

    /// <summary>
    /// skb->pkt_type as eth_type_trans sets it before the ingress hook: group bit of the destination MAC →
    /// broadcast (ff:ff:ff:ff:ff:ff) or multicast, else host when it equals the device's current address
    /// (read at run time through xdp_buff->rxq->dev->dev_addr, so an address change needs no reload),
    /// else otherhost.
    /// </summary>
    private void EmitPktType(Assembler asm, Register dst, string fail)
    {
        const short mac = RuntimeContext.Scratch, devMac = RuntimeContext.Scratch + 8;
        var unicast = asm.NewLabel("pkt_unicast");
        var other = asm.NewLabel("pkt_other");
        var done = asm.NewLabel("pkt_done");
        var at = EmitAccess(asm, null, 0, 6, fail);
        asm.Emit(Asm.LdxW(R2, at.Pointer, at.Offset), Asm.StxW(R10, mac, R2),
            Asm.LdxH(R2, at.Pointer, (short)(at.Offset + 4)), Asm.StxH(R10, mac + 4, R2),
            Asm.LdxB(R2, at.Pointer, at.Offset), Asm.And64Imm(R2, 1), Asm.JeqImm(R2, 0, unicast),
            // group address: broadcast only when all 48 bits are set
            Asm.LdxW(R2, R10, mac), Asm.LdxH(R3, R10, mac + 4), Asm.LoadImm64(R4, 0xffffffffL),
            Asm.Mov64Imm(dst, 2), Asm.JneReg(R2, R4, done), Asm.JneImm(R3, 0xffff, done),
            Asm.Mov64Imm(dst, 1), Asm.Ja(done));
        asm.Label(unicast);
        asm.Emit(Asm.Mov64Reg(R1, R6), Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_cast_to_kern_ctx")),
            Asm.LdxDW(R1, R0, Bytes("xdp_buff", "rxq")), Asm.LdxDW(R1, R1, Bytes("xdp_rxq_info", "dev")),
            Asm.LdxDW(R3, R1, Bytes("net_device", "dev_addr")),
            Asm.Mov64Reg(R1, R10), Asm.Add64Imm(R1, devMac), Asm.Mov64Imm(R2, 6), Asm.Call(HelperFunc.ProbeReadKernel),
            Asm.JneImm(R0, 0, fail), // the device's address is always readable; refuse to guess if it is not
            Asm.LdxW(R2, R10, mac), Asm.LdxW(R3, R10, devMac), Asm.JneReg(R2, R3, other),
            Asm.LdxH(R2, R10, mac + 4), Asm.LdxH(R3, R10, devMac + 4), Asm.JneReg(R2, R3, other),
            Asm.Mov64Imm(dst, 0), Asm.Ja(done));
        asm.Label(other);
        asm.Emit(Asm.Mov64Imm(dst, 3));
        asm.Label(done);
    }

    private static short Bytes(string s, string m) => (short)(VmlinuxBtf.Member(s, m).BitOffset / 8);

    public override StaticName? StaticInterfaceName(MetaKey key) =>
        key == MetaKey.IifName ? new StaticName(Value.IfName(device)) : StaticName.Absent;
}
