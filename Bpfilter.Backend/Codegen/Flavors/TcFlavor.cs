using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>netdev ingress/egress as a tcx program: accept = TC_ACT_OK, drop = TC_ACT_SHOT.</summary>
internal sealed class TcFlavor(string device, bool ingress, bool ipOnly) : DirectPacketFlavor
{
    public override BpfProgType ProgramType => BpfProgType.SchedCls;
    public override BpfAttachType AttachType => ingress ? BpfAttachType.TcxIngress : BpfAttachType.TcxEgress;
    public override int AcceptCode => 0;
    public override int DropCode => 2;
    public override int? FixedNfProto => ipOnly ? null : 5;
    public override bool LengthFromNetworkHeader => ingress;
    public bool Ingress => ingress;

    public override void EmitLog(Assembler asm, string ringBuffer, uint configId) =>
        Log.LogEmitter.EmitTc(asm, R6, ringBuffer, configId, device, ingress);
    protected override short DataOffset => 76;
    protected override short DataEndOffset => 80;

    public override void EmitPacketSize(Assembler asm) =>
        asm.Emit(Asm.LdxW(R0, R6, 0), Asm.StxW(R10, RuntimeContext.PacketSize, R0)); // __sk_buff.len

    public override bool EmitMeta(Assembler asm, MetaKey key, Register dst, string fail)
    {
        switch (key)
        {
            case MetaKey.Iif when ingress:
            case MetaKey.Oif when !ingress:
                asm.Emit(Asm.LdxW(dst, R6, 40)); // __sk_buff.ifindex: the device the program runs on
                return true;
            case MetaKey.Iif:
            case MetaKey.Oif:
                asm.Emit(Asm.Ja(fail));
                return true;
            case MetaKey.Mark:
                asm.Emit(Asm.LdxW(dst, R6, 8));
                return true;
            case MetaKey.PktType:
                asm.Emit(Asm.LdxW(dst, R6, 4));
                return true;
            default:
                return false;
        }
    }

    public override StaticName? StaticInterfaceName(MetaKey key) =>
        (key == MetaKey.IifName) == ingress ? new StaticName(Value.IfName(device)) : StaticName.Absent;
}
