using Bpfilter.Backend.Bpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// Whether a BPF_NETFILTER program may load packet bytes through <c>skb->data</c> read from its trusted skb
/// pointer: kernels that type a BTF pointer member to a non-struct as read-only untrusted memory (loads become
/// exception-handled probe loads) accept it; older ones reject the load, and programs then copy the packet with
/// bpf_dynptr_read only. Probed once by loading such a program.
/// </summary>
public static class SkbDataRead
{
    static readonly Lazy<bool> Probe = new(Check);

    /// <summary>True when the running kernel's verifier accepts loads through skb->data in a netfilter program.</summary>
    public static bool Available => Probe.Value;

    static bool Check()
    {
        try
        {
            var data = (short)(VmlinuxBtf.Member("sk_buff", "data").BitOffset / 8);
            var asm = new Assembler().Emit(Asm.LdxDW(R1, R1, 8), Asm.LdxDW(R2, R1, data), Asm.LdxDW(R0, R2, 56),
                Asm.Mov64Imm(R0, 1), Asm.Exit());
            using var prog = BpfProgram.Load(BpfProgType.Netfilter, "bf_skb_data", Linker.Link(asm.Build()), BpfAttachType.Netfilter);
            return true;
        }
        catch (Exception e) when (e is BpfException or DllNotFoundException or EntryPointNotFoundException or InvalidDataException)
        {
            return false;
        }
    }
}
