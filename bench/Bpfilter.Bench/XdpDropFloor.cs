using System.Globalization;
using System.Net.NetworkInformation;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Bench;

/// <summary>
/// `bpfilter-bench xdp-drop IFNAME SECONDS`: attaches a bare `return XDP_DROP` to IFNAME (in the caller's
/// network namespace) for SECONDS, then detaches it: the floor a packet-rate measurement is compared with.
/// Prints "attached" on stdout once the link exists.
/// </summary>
public static class XdpDropFloor
{
    const int XdpDrop = 1;

    public static int Run(string[] args)
    {
        if (args.Length < 2) { Console.Error.WriteLine("usage: bpfilter-bench xdp-drop IFNAME SECONDS"); return 2; }
        var ifindex = NetworkInterface.GetAllNetworkInterfaces().Single(i => i.Name == args[0]).GetIPProperties().GetIPv4Properties().Index;
        var asm = new Assembler().Emit(Asm.Mov64Imm(Register.R0, XdpDrop), Asm.Exit());
        using var prog = BpfProgram.Load(BpfProgType.Xdp, "bench_drop", Linker.Link(asm.Build()), BpfAttachType.Xdp);
        using var link = BpfLink.AttachXdp(prog, ifindex);
        Console.WriteLine("attached");
        Console.Out.Flush();
        Thread.Sleep(TimeSpan.FromSeconds(double.Parse(args[1], CultureInfo.InvariantCulture)));
        return 0;
    }
}
