using System.Buffers.Binary;
using System.Globalization;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

// Per-packet cost of generated XDP programs, measured with BPF_PROG_TEST_RUN (the kernel's own
// timing, repeat=N per run), medians of several runs. Usage: bpfilter-bench [runs] [repeat] [rules...]
// Other modes: `attached` (AttachedProgram.cs) and `xdp-drop` (XdpDropFloor.cs), used by bench/suite.py.
if (args is ["attached", ..]) return Bpfilter.Bench.AttachedProgram.Run(args[1..]);
if (args is ["xdp-drop", ..]) return Bpfilter.Bench.XdpDropFloor.Run(args[1..]);

var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 7;
var repeat = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1_000_000;
var ruleCounts = args.Length > 2 ? args[2..].Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray() : [1, 10, 100];

var packet = TcpFrame();
var cases = new List<(string Name, Func<IDisposable> Load, Func<IDisposable, uint, uint> Run)>();

cases.Add(("return XDP_PASS", () =>
{
    var asm = new Assembler().Emit(Asm.Mov64Imm(Register.R0, 2), Asm.Exit());
    return BpfProgram.Load(BpfProgType.Xdp, "bench_pass", Linker.Link(asm.Build()), BpfAttachType.Xdp);
}, (p, _) => 0));

cases.Add(("empty chain (policy accept)", () => Load(0), (p, _) => 0));
foreach (var n in ruleCounts)
    cases.Add(($"{n} rules (none match)", () => Load(n), (p, _) => 0));
foreach (var n in ruleCounts.Where(n => n > 1))
    cases.Add(($"{n} rules, not grouped", () => Load(n, LoweringPipeline.None), (p, _) => 0));
foreach (var n in ruleCounts.Where(n => n > 1))
    cases.Add(($"{n} addresses in a set", () => LoadSet(n), (p, _) => 0));

Console.WriteLine($"BPF_PROG_TEST_RUN, XDP, {packet.Length}-byte IPv4/TCP frame, repeat={repeat}, median of {runs} runs");
Console.WriteLine($"{"program",-32} {"insns",7} {"median ns/pkt",14} {"min",6} {"max",6}");
foreach (var (name, load, _) in cases)
{
    using var prog = load();
    var bpf = prog switch { BpfProgram b => b, LoadedProgram l => l.Program, _ => throw new InvalidOperationException() };
    var insns = prog is LoadedProgram lp ? lp.Compiled.Instructions.Sum(i => i.Slots) : 2;
    var expected = bpf.TestRun(packet).ReturnValue;
    if (expected != 2) throw new InvalidOperationException($"{name}: expected XDP_PASS, got {expected}");
    var samples = new List<uint>();
    for (var r = 0; r < runs; r++) samples.Add(bpf.TestRun(packet, repeat).DurationNs);
    samples.Sort();
    Console.WriteLine($"{name,-32} {insns,7} {samples[samples.Count / 2],14} {samples[0],6} {samples[^1],6}");
}
return 0;

static LoadedProgram Load(int rules, LoweringPipeline? lowering = null)
{
    // Realistic non-matching rules: ip saddr X tcp dport Y counter drop, each different.
    var list = new List<Rule>();
    for (var i = 0; i < rules; i++)
        list.Add(new Rule(ValueList.Of(
            Matcher.Eq(Fields.Ip.Saddr, Value.FromBytes(10, 1, (byte)(i >> 8), (byte)i)),
            Matcher.Eq(Fields.Tcp.Dport, Value.FromUInt((ulong)(1000 + i), 16))), Verdict.Drop, (ulong)i));
    return Compile(list, [], lowering);
}

static LoadedProgram LoadSet(int elements)
{
    var set = new Bpfilter.Backend.Ir.Set("block", Fields.Ip.Saddr, SetData.NoData,
        Enumerable.Range(0, elements).Select(i => SetElement.Exact(Value.FromBytes(10, 2, (byte)(i >> 8), (byte)i))).ToValueList());
    return Compile([new Rule(ValueList.Of(Matcher.InSet(Fields.Ip.Saddr, "block")), Verdict.Drop, 1)], [set]);
}

static LoadedProgram Compile(List<Rule> rules, Bpfilter.Backend.Ir.Set[] sets, LoweringPipeline? lowering = null)
{
    var chain = new BaseChain("bench/in", new XdpIngress("lo"), 0, Verdict.Accept, rules.ToValueList());
    var rs = new Ruleset(ValueList.Of(chain), ValueList<Chain>.Empty, sets.ToValueList());
    return LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: lowering));
}

static byte[] TcpFrame()
{
    var f = new byte[64];
    f[0] = 2; f[5] = 2; f[6] = 2; f[11] = 1;
    f[12] = 0x08; // IPv4
    f[14] = 0x45;
    BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 40);
    f[22] = 64; f[23] = 6;
    f[26] = 198; f[27] = 18; f[28] = 0; f[29] = 1;
    f[30] = 198; f[31] = 18; f[32] = 0; f[33] = 2;
    BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(34), 40000);
    BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(36), 22);
    f[46] = 0x50; f[47] = 0x02;
    return f;
}
