using System.Buffers.Binary;
using System.Globalization;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

// Per-packet cost of generated XDP programs, measured with BPF_PROG_TEST_RUN (the kernel's own
// timing, repeat=N per run), medians of several runs, and the time to compile and load each (verifier
// included). Usage: bpfilter-bench [runs] [repeat] [rules...]; BENCH_ALTERNATING=n,n,... adds chains of n
// rules whose shapes alternate (no grouping), split into tail-called segments past the verifier's limits
// (BENCH_UNSPLIT=1: one program, as before splitting existed); BENCH_JUMPS=n,n,... adds n jumps into a 10-rule regular
// chain, as a subprogram and inlined.
// Other modes: `mixed [runs] [repeat] [rules...]` (ClassBench-style mixed ACLs, see ClassBenchRules),
// `attached` and `bare` (AttachedProgram.cs), `xdp-drop` (XdpDropFloor.cs) and `nf-drop` (NetfilterDropFloor.cs), used by bench/suite.py.
if (args is ["mixed", ..])
{
    Bpfilter.Bench.MixedBench.Run(args[1..]);
    return 0;
}
if (args is ["costs", ..])
{
    Bpfilter.Bench.CostBench.Run(args[1..]);
    return 0;
}
if (args is ["attached", ..]) return Bpfilter.Bench.AttachedProgram.Run(args[1..]);
if (args is ["xdp-drop", ..]) return Bpfilter.Bench.XdpDropFloor.Run(args[1..]);
if (args is ["nf-drop", ..]) return Bpfilter.Bench.NetfilterDropFloor.Run(args[1..]);
if (args is ["bare", ..]) return Bpfilter.Bench.AttachedProgram.RunBare(args[1..]);

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
foreach (var n in ruleCounts.Where(n => n is > 1 and <= 2000)) // longer linear chains exceed the verifier's limits
    cases.Add(($"{n} rules, not grouped", () => Load(n, LoweringPipeline.None), (p, _) => 0));
foreach (var n in ruleCounts.Where(n => n > 1))
    cases.Add(($"{n} addresses in a set", () => LoadSet(n), (p, _) => 0));
foreach (var n in (Environment.GetEnvironmentVariable("BENCH_ALTERNATING") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
    cases.Add(($"{n} alternating rules", () => LoadAlternating(int.Parse(n, CultureInfo.InvariantCulture)), (p, _) => 0));
foreach (var n in (Environment.GetEnvironmentVariable("BENCH_JUMPS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
    foreach (var inline in new[] { false, true })
        cases.Add(($"{n} jumps, 10-rule chain{(inline ? ", inlined" : "")}", () => LoadJumps(int.Parse(n, CultureInfo.InvariantCulture), 10, inline), (p, _) => 0));

Console.WriteLine($"BPF_PROG_TEST_RUN, XDP, {packet.Length}-byte IPv4/TCP frame, repeat={repeat}, median of {runs} runs");
Console.WriteLine($"{"program",-32} {"insns",7} {"progs",5} {"load ms",8} {"median ns/pkt",14} {"min",6} {"max",6}");
foreach (var (name, load, _) in cases)
{
    var clock = System.Diagnostics.Stopwatch.StartNew();
    using var prog = load();
    var loadMs = clock.ElapsedMilliseconds;
    var bpf = prog switch { BpfProgram b => b, LoadedProgram l => l.Program, _ => throw new InvalidOperationException() };
    var insns = prog is LoadedProgram lp ? lp.Compiled.InstructionCount : 2;
    var progs = prog is LoadedProgram lps ? 1 + lps.Segments.Count : 1;
    var expected = bpf.TestRun(packet).ReturnValue;
    if (expected != 2) throw new InvalidOperationException($"{name}: expected XDP_PASS, got {expected}");
    var samples = new List<uint>();
    for (var r = 0; r < runs; r++) samples.Add(bpf.TestRun(packet, repeat).DurationNs);
    samples.Sort();
    Console.WriteLine($"{name,-32} {insns,7} {progs,5} {loadMs,8} {samples[samples.Count / 2],14} {samples[0],6} {samples[^1],6}");
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

static LoadedProgram LoadAlternating(int rules)
{
    // ip saddr 10.x.y.z and, by turns, tcp dport ==, a dport range, an ip daddr prefix, tcp dport !=: no two neighbours group
    var list = new List<Rule>();
    for (var i = 0; i < rules; i++)
    {
        var second = (i % 4) switch
        {
            0 => Matcher.Eq(Fields.Tcp.Dport, Value.FromUInt(1000, 16)),
            1 => Matcher.Range(Fields.Tcp.Dport, Value.FromUInt(1000, 16), Value.FromUInt(1010, 16)),
            2 => Matcher.Prefix(Fields.Ip.Daddr, Value.Ipv4("198.18.0.0"), 24),
            _ => Matcher.Ne(Fields.Tcp.Dport, Value.FromUInt(9, 16)),
        };
        list.Add(new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, Value.FromBytes(10, (byte)(1 + i / 65536), (byte)(i >> 8), (byte)i)), second),
            Verdict.Drop, (ulong)i));
    }
    return Compile(list, []);
}

static LoadedProgram LoadJumps(int jumps, int chainRules, bool inline)
{
    // `tcp dport 22 jump t/sub` n times (the frame matches each, so it runs every jump); t/sub: m non-matching
    // `ip saddr X counter drop` rules, so every call comes back: regular chains as subprograms, or inlined
    var sub = new Chain("t/sub", Enumerable.Range(0, chainRules).Select(i => new Rule(ValueList.Of(
        Matcher.Eq(Fields.Ip.Saddr, Value.FromBytes(10, 1, (byte)(i >> 8), (byte)i))), Verdict.Drop, (ulong)(100_000 + i))).ToValueList());
    var rules = Enumerable.Range(0, jumps).Select(i => new Rule(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, Value.FromUInt(22, 16))),
        Verdict.Jump("t/sub"), (ulong)i)).ToValueList();
    var rs = new Ruleset(ValueList.Of(new BaseChain("bench/in", new XdpIngress("lo"), 0, Verdict.Accept, rules)), ValueList.Of(sub),
        ValueList<Bpfilter.Backend.Ir.Set>.Empty);
    return LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None, inlineRegularChains: inline));
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
    var unsplit = Environment.GetEnvironmentVariable("BENCH_UNSPLIT") == "1";
    return LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: lowering,
        segmentInstructions: unsplit ? int.MaxValue : ProgramCompiler.DefaultSegmentInstructions,
        segmentBranches: unsplit ? int.MaxValue : ProgramCompiler.SegmentBranches));
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
