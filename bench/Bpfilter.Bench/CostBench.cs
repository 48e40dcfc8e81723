using System.Buffers.Binary;
using System.Globalization;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Bench;

/// <summary>
/// `bpfilter-bench costs [runs=5] [repeat=200000] [rules=10000]`: where the suite's per-packet time goes, by
/// programs that differ in one thing each, BPF_PROG_TEST_RUN over the suite's probe (a 60-byte UDP frame
/// 198.18.0.1 → 198.18.0.2, dport 9) at XDP and BPF_NETFILTER (input, ipv4): the bare return, the probe rule
/// alone, N same-shape rules before it (one grouped hash lookup), the same without counters, and N−1
/// ClassBench-style rules before it (classifiers), with and without splitting addresses into halves.
/// </summary>
public static class CostBench
{
    public static void Run(string[] args)
    {
        var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var repeat = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200_000;
        var n = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10_000;
        var frame = Probe();
        Console.WriteLine($"BPF_PROG_TEST_RUN, probe UDP frame, repeat={repeat}, median of {runs} runs, N={n}");
        Console.WriteLine($"{"program",-48} {"xdp ns",7} {"nf ns",7}");
        var cases = new (string Name, Func<Hook, LoadedProgram?> Load)[]
        {
            ("return (bare program)", _ => null),
            ("probe rule alone", h => Load(h, [ProbeRule()])),
            ($"{n} same-shape rules (grouped)", h => Load(h, Same(n, counters: true))),
            ($"{n} same-shape rules, no counters", h => Load(h, Same(n, counters: false))),
            ($"{n} classbench rules (classified)", h => Load(h, ClassBench(n))),
            ($"{n} classbench rules, addresses not split", h => Load(h, ClassBench(n),
                new LoweringPipeline(new UnreachableRules(), new RuleGrouping(), new Classification { SplitWideFields = false }))),
        };
        if (Environment.GetEnvironmentVariable("BENCH_DUMP") is { Length: > 0 } dir) Dump(dir, n);
        foreach (var (name, load) in cases)
        {
            var xdp = Measure(load, new XdpIngress("lo"), frame, runs, repeat, BpfProgType.Xdp);
            var nf = Measure(load, new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0), frame, runs, repeat, BpfProgType.Netfilter);
            Console.WriteLine($"{name,-48} {xdp,7} {nf,7}");
        }
        // the netfilter program's fixed packet access, piece by piece (what the probe rule pays over a bare return)
        foreach (var (name, insns) in NetfilterAccess())
            Console.WriteLine($"{name,-48} {"–",7} {MeasureNetfilter(insns, frame, runs, repeat),7}");
    }

    /// <summary>Bare netfilter programs: the skb dynptr alone, then with the entry's copy of the first 64 bytes.</summary>
    static IEnumerable<(string, Instruction[])> NetfilterAccess()
    {
        Instruction[] Dynptr() => [Asm.Mov64Reg(Register.R6, Register.R1), Asm.LdxDW(Register.R1, Register.R6, 8), Asm.Mov64Imm(Register.R2, 0),
            Asm.Mov64Reg(Register.R3, Register.R10), Asm.Add64Imm(Register.R3, -16), Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_dynptr_from_skb"))];
        Instruction[] Read(int n) => [.. Enumerable.Range(0, 8).Select(i => Asm.StDW(Register.R10, (short)(-80 + 8 * i), 0)),
            Asm.Mov64Reg(Register.R1, Register.R10), Asm.Add64Imm(Register.R1, -80), Asm.Mov64Imm(Register.R2, n),
            Asm.Mov64Reg(Register.R3, Register.R10), Asm.Add64Imm(Register.R3, -16), Asm.Mov64Imm(Register.R4, 0), Asm.Mov64Imm(Register.R5, 0),
            Asm.Call(HelperFunc.DynptrRead)];
        Instruction[] Accept = [Asm.Mov64Imm(Register.R0, 1), Asm.Exit()];
        yield return ("nf: bpf_dynptr_from_skb only", [.. Dynptr(), .. Accept]);
        yield return ("nf: + bpf_dynptr_read of 20 bytes", [.. Dynptr(), .. Read(20), .. Accept]);
        yield return ("nf: + bpf_dynptr_read of 46 bytes (the probe)", [.. Dynptr(), .. Read(46), .. Accept]);
        // skb->data through the BTF pointer (read-only untrusted memory, probe loads): 64 bytes copied, no helper
        var data = (short)(VmlinuxBtf.Member("sk_buff", "data").BitOffset / 8);
        yield return ("nf: 64 bytes loaded from skb->data, no dynptr", [Asm.LdxDW(Register.R1, Register.R1, 8), Asm.LdxDW(Register.R2, Register.R1, data),
            .. Enumerable.Range(0, 8).SelectMany(i => new[] { Asm.LdxDW(Register.R0, Register.R2, (short)(8 * i)), Asm.StxDW(Register.R10, (short)(-80 + 8 * i), Register.R0) }),
            .. Accept]);
    }

    static string MeasureNetfilter(Instruction[] insns, byte[] frame, int runs, int repeat)
    {
        try
        {
            using var prog = BpfProgram.Load(BpfProgType.Netfilter, "bench_nf", Linker.Link(new Assembler().Emit(insns).Build()), BpfAttachType.Netfilter);
            return Median(prog, frame, AttachedProgram.HookState(1, 2), runs, repeat);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"netfilter: {e.Message}");
            return "err";
        }
    }

    /// <summary>Median ns per packet of <paramref name="runs"/> test runs of <paramref name="repeat"/> each.</summary>
    static string Median(BpfProgram prog, byte[] frame, byte[] ctx, int runs, int repeat)
    {
        var samples = new List<uint>();
        prog.TestRun(frame, 1, ctx);
        for (var r = 0; r < runs; r++) samples.Add(prog.TestRun(frame, repeat, ctx).DurationNs);
        samples.Sort();
        return samples[samples.Count / 2].ToString(CultureInfo.InvariantCulture);
    }

    static string Measure(Func<Hook, LoadedProgram?> load, Hook hook, byte[] frame, int runs, int repeat, BpfProgType type)
    {
        try
        {
            using var loaded = load(hook);
            using var bare = loaded is null ? BpfProgram.Load(type, "bench_ret", Linker.Link(new Assembler()
                .Emit(Asm.Mov64Imm(Register.R0, 1), Asm.Exit()).Build()), type == BpfProgType.Xdp ? BpfAttachType.Xdp : BpfAttachType.Netfilter) : null;
            var prog = loaded?.Program ?? bare!;
            return Median(prog, frame, type == BpfProgType.Netfilter ? AttachedProgram.HookState(1, 2) : [], runs, repeat); // NF_INET_LOCAL_IN, NFPROTO_IPV4
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"{hook}: {e.Message}");
            return "err";
        }
    }

    static LoadedProgram Load(Hook hook, List<Rule> rules, LoweringPipeline? lowering = null) => LoadedProgram.Load(Compile(hook, rules, lowering));

    static CompiledProgram Compile(Hook hook, List<Rule> rules, LoweringPipeline? lowering = null)
    {
        var chain = new BaseChain("bench/c", hook, 0, Verdict.Accept, rules.ToValueList());
        var rs = new Ruleset(ValueList.Of(chain), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
        return ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: lowering);
    }

    /// <summary>BENCH_DUMP=DIR: writes the listings of the probe rule's and the N same-shape rules' programs (what the costs are of).</summary>
    static void Dump(string dir, int n)
    {
        Directory.CreateDirectory(dir);
        foreach (var (hook, tag) in new (Hook, string)[] { (new XdpIngress("lo"), "xdp"), (new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0), "nf4") })
        {
            File.WriteAllText(Path.Combine(dir, $"probe-{tag}.txt"), Compile(hook, [ProbeRule()]).Disassembly);
            File.WriteAllText(Path.Combine(dir, $"same-{n}-{tag}.txt"), Compile(hook, Same(n, counters: true)).Disassembly);
        }
    }

    static Rule ProbeRule(ulong id = 1) => new(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, Value.Ipv4("198.18.0.1")),
        Matcher.Eq(Fields.Udp.Dport, Value.FromUInt(9, 16))), Verdict.Drop, id);

    /// <summary>The suite's `same` shape: ip saddr 10.a.b.c udp dport P counter drop, the probe's rule last.</summary>
    static List<Rule> Same(int n, bool counters)
    {
        var rules = new List<Rule>();
        for (var i = 0; i < n - 1; i++)
        {
            var m = ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, Value.FromBytes(10, (byte)(i >> 16), (byte)(i >> 8), (byte)i)),
                Matcher.Eq(Fields.Udp.Dport, Value.FromUInt((ulong)(1024 + i % 60000), 16)));
            rules.Add(counters ? new Rule(m, Verdict.Drop, (ulong)(i + 2)) : new Rule(Verdict.Drop, m.Items.ToArray()));
        }
        rules.Add(counters ? ProbeRule() : new Rule(Verdict.Drop, ProbeRule().Matchers.Items.ToArray()));
        return rules;
    }

    static List<Rule> ClassBench(int n)
    {
        static bool In((uint From, uint To) r, uint v) => r.From <= v && v <= r.To;
        static bool InPort((int From, int To) r, int v) => r.From <= v && v <= r.To;
        // rules that would take the probe are left out, as the suite's generator draws them again
        var rules = new ClassBenchRules(12).Rules(2 * n).Where(s => !(In(s.Saddr, 0xc6120001) && In(s.Daddr, 0xc6120002)
            && s.Proto is 0 or 17 && InPort(s.Sport, 40000) && InPort(s.Dport, 9))).Take(n - 1).Select(s => s.Rule).ToList();
        rules.Add(ProbeRule(ulong.MaxValue));
        return rules;
    }

    static byte[] Probe()
    {
        var f = new byte[60];
        f[0] = 2; f[5] = 2; f[6] = 2; f[11] = 1;
        f[12] = 0x08;
        f[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 28);
        f[22] = 64; f[23] = 17;
        byte[] src = [198, 18, 0, 1], dst = [198, 18, 0, 2];
        src.CopyTo(f, 26);
        dst.CopyTo(f, 30);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(34), 40000);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(36), 9);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(38), 8);
        return f;
    }
}
