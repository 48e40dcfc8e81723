using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>Compiles a one-chain ruleset at a hook and loads it, for BPF_PROG_TEST_RUN.</summary>
internal static class Harness
{
    public const uint XdpDrop = 1, XdpPass = 2, XdpTx = 3, TcOk = 0, TcShot = 2, NfDrop = 0, NfAccept = 1;

    public static readonly Hook Xdp = new XdpIngress("lo");
    public static readonly Hook TcIn = new TcIngress("lo");
    public static readonly Hook TcOut = new TcEgress("lo");
    public static readonly Hook NfIn4 = new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0);

    public static Ruleset Ruleset(Hook hook, Verdict policy, Rule[] rules, Chain[]? chains = null, Backend.Ir.Set[]? sets = null) =>
        new(ValueList.Of(new BaseChain("t/base", hook, 0, policy, rules)),
            (chains ?? []).ToValueList(), (sets ?? []).ToValueList());

    public static LoadedProgram Load(Hook hook, Verdict policy, Rule[] rules, Chain[]? chains = null, Backend.Ir.Set[]? sets = null, bool ipv6 = false,
        LoweringPipeline? lowering = null)
    {
        var rs = Ruleset(hook, policy, rules, chains, sets);
        return LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, ipv6, lowering));
    }

    public static LoadedProgram Xdp1(params Rule[] rules) => Load(Xdp, Verdict.Accept, rules);

    /// <summary>An XDP program of one `reject` rule.</summary>
    public static LoadedProgram Reject(RejectVerdict r, params Matcher[] m) => Xdp1(new Rule(r, m));

    /// <summary>Runs one frame and returns the verdict with the frame as the program left it (a reply for XDP_TX).</summary>
    public static (uint Verdict, byte[] Frame) Answer(LoadedProgram p, byte[] frame)
    {
        var r = p.TestRun(frame);
        return (r.ReturnValue, r.DataOut);
    }

    /// <summary>
    /// Runs one packet. Netfilter programs see the packet from the network header: BPF_PROG_TEST_RUN
    /// without a ctx runs them as NF_INET_LOCAL_OUT with the data as the IP packet, so the Ethernet
    /// header of our frames is stripped.
    /// </summary>
    public static uint Run(this LoadedProgram p, byte[] packet) =>
        p.TestRun(p.Compiled.ProgramType == Backend.Libbpf.BpfProgType.Netfilter ? packet[14..] : packet).ReturnValue;

    /// <summary>Runs <paramref name="test"/> with the path of a bpf file system of its own, unmounted afterwards, also on failure.</summary>
    public static void OnBpfFs(Action<string> test)
    {
        var mount = Path.Combine(Path.GetTempPath(), $"bf-pins-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        ProcessRunner.Check("mount", ["-t", "bpf", "bpf", mount]);
        try
        {
            test(mount);
        }
        finally
        {
            ProcessRunner.Check("umount", [mount]);
            Directory.Delete(mount);
        }
    }

    public static Rule Drop(params Matcher[] m) => new(Verdict.Drop, m);
    public static Rule Accept(params Matcher[] m) => new(Verdict.Accept, m);
    public static Rule Counted(ulong id, Verdict v, params Matcher[] m) => new(m.ToValueList(), v, id);

    public static Value U8(ulong v) => Value.FromUInt(v, 8);
    public static Value U16(ulong v) => Value.FromUInt(v, 16);
    public static Value U32(ulong v) => Value.FromUInt(v, 32);
    public static Value V4(string a) => Value.Ipv4(a);
    public static Value V6(string a) => Value.Ipv6(a);
}
