using System.Globalization;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Bench;

/// <summary>
/// `bpfilter-bench attached ID xdp|nf-input4 FRAME-HEX [runs] [repeat]`: BPF_PROG_TEST_RUN of a program
/// bpfilterd has loaded (its id from `bpfilterd explain`), over the given Ethernet frame, median ns per
/// packet of `runs` runs of `repeat` each (default: calibrated so that one run takes about 0.2 s). A
/// netfilter program gets an nf_hook_state ctx for NF_INET_LOCAL_IN / NFPROTO_IPV4 (the kernel's test run
/// takes the Ethernet header for every hook but output, and checks it against pf).
/// Prints "ns=MEDIAN min=.. max=.. verdict=RETVAL repeat=..".
/// </summary>
public static class AttachedProgram
{
    const int NfInetLocalIn = 1, NfProtoIpv4 = 2;

    public static int Run(string[] args)
    {
        if (args.Length < 3) { Console.Error.WriteLine("usage: bpfilter-bench attached ID xdp|nf-input4 FRAME-HEX [runs=7] [repeat]"); return 2; }
        var id = uint.Parse(args[0], CultureInfo.InvariantCulture);
        var frame = Convert.FromHexString(args[2]);
        var (type, data, ctx) = args[1] switch
        {
            "xdp" => (BpfProgType.Xdp, frame, Array.Empty<byte>()),
            "nf-input4" => (BpfProgType.Netfilter, frame, HookState(NfInetLocalIn, NfProtoIpv4)),
            _ => throw new ArgumentException($"unknown program kind {args[1]} (xdp or nf-input4)"),
        };
        using var prog = BpfProgram.OpenById(id, type);
        return Measure(prog, args, data, ctx);
    }

    /// <summary>
    /// `bpfilter-bench bare xdp|nf-input4 FRAME-HEX [runs] [repeat]`: the same measurement of a bare `return accept`
    /// program of that type: the hook's and the test-run harness's own cost, which every program pays.
    /// </summary>
    public static int RunBare(string[] args)
    {
        if (args.Length < 2) { Console.Error.WriteLine("usage: bpfilter-bench bare xdp|nf-input4 FRAME-HEX [runs=7] [repeat]"); return 2; }
        var frame = Convert.FromHexString(args[1]);
        var (type, attach, accept, ctx) = args[0] switch
        {
            "xdp" => (BpfProgType.Xdp, BpfAttachType.Xdp, 2, Array.Empty<byte>()),
            "nf-input4" => (BpfProgType.Netfilter, BpfAttachType.Netfilter, 1, HookState(NfInetLocalIn, NfProtoIpv4)),
            _ => throw new ArgumentException($"unknown program kind {args[0]} (xdp or nf-input4)"),
        };
        using var prog = BpfProgram.Load(type, "bench_bare", Linker.Link(new Assembler().Emit(Asm.Mov64Imm(Register.R0, accept), Asm.Exit()).Build()), attach);
        return Measure(prog, ["", .. args], frame, ctx);
    }

    /// <summary>args[3] runs, args[4] repeat, as for `attached`.</summary>
    static int Measure(BpfProgram prog, string[] args, byte[] data, byte[] ctx)
    {
        var runs = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 7;
        var verdict = prog.TestRun(data, 1, ctx).ReturnValue;
        var repeat = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture)
            : (int)Math.Clamp(200_000_000L / Math.Max(1u, prog.TestRun(data, 100, ctx).DurationNs), 100, 1_000_000);
        var samples = new List<uint>();
        for (var r = 0; r < runs; r++) samples.Add(prog.TestRun(data, repeat, ctx).DurationNs);
        samples.Sort();
        Console.WriteLine($"ns={samples[samples.Count / 2]} min={samples[0]} max={samples[^1]} verdict={verdict} repeat={repeat}");
        return 0;
    }

    internal static byte[] HookState(byte hook, byte pf)
    {
        var ctx = new byte[VmlinuxBtf.StructSize("nf_hook_state")];
        ctx[VmlinuxBtf.Member("nf_hook_state", "hook").BitOffset / 8] = hook;
        ctx[VmlinuxBtf.Member("nf_hook_state", "pf").BitOffset / 8] = pf;
        return ctx;
    }
}
