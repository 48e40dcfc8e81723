using System.Globalization;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Bench;

/// <summary>
/// `bpfilter-bench nf-drop SECONDS`: attaches a bare `return NF_DROP` at ipv4 LOCAL_IN, priority 0 (the hook
/// bpfilterd's inet input chain runs at), in the caller's network namespace, for SECONDS: the ceiling of a
/// BPF_NETFILTER input program's packet rate, the kernel's receive path up to that hook with no program work.
/// Prints "attached" on stdout once the link exists.
/// </summary>
public static class NetfilterDropFloor
{
    const int NfDrop = 0, NfProtoIpv4 = 2, NfInetLocalIn = 1;

    public static int Run(string[] args)
    {
        if (args.Length < 1) { Console.Error.WriteLine("usage: bpfilter-bench nf-drop SECONDS"); return 2; }
        var asm = new Assembler().Emit(Asm.Mov64Imm(Register.R0, NfDrop), Asm.Exit());
        using var prog = BpfProgram.Load(BpfProgType.Netfilter, "bench_nf_drop", Linker.Link(asm.Build()), BpfAttachType.Netfilter);
        using var link = BpfLink.AttachNetfilter(prog, NfProtoIpv4, NfInetLocalIn, 0);
        Console.WriteLine("attached");
        Console.Out.Flush();
        Thread.Sleep(TimeSpan.FromSeconds(double.Parse(args[0], CultureInfo.InvariantCulture)));
        return 0;
    }
}
