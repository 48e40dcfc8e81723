using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Chains too long for one program: split into segments chained by tail calls (ProgramCompiler.Segments.cs),
/// first-match order, counters, jumps and accept into the next base chain kept across segment boundaries.
/// </summary>
public class SplitChainTests
{
    /// <summary>
    /// Without classification: these chains test the split of linear code (the default pipeline would make
    /// their 5-tuple rules one classifier, which needs no split).
    /// </summary>
    static readonly LoweringPipeline Linear = new(new UnreachableRules(), new RuleGrouping());

    /// <summary>Source address only rule <paramref name="i"/> matches.</summary>
    internal static string Source(int i) => $"10.{1 + i / 65536}.{(i >> 8) & 255}.{i & 255}";

    internal static byte[] From(string src, ushort dport = 1000) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport);

    /// <summary>
    /// Rule i: `ip saddr Source(i)` and, by i mod 4, `tcp dport 1000`, `tcp dport 1000-1010`, `ip daddr 198.18.0.0/24`
    /// or `tcp dport != 9`, counter id i, drop: neighbours never share a shape, so no two rules group into one lookup.
    /// </summary>
    internal static Rule Alternating(int i)
    {
        var first = Matcher.Eq(Fields.Ip.Saddr, V4(Source(i)));
        var second = (i % 4) switch
        {
            0 => Matcher.Eq(Fields.Tcp.Dport, U16(1000)),
            1 => Matcher.Range(Fields.Tcp.Dport, U16(1000), U16(1010)),
            2 => Matcher.Prefix(Fields.Ip.Daddr, V4("198.18.0.0"), 24),
            _ => Matcher.Ne(Fields.Tcp.Dport, U16(9)),
        };
        return Counted((ulong)i, Verdict.Drop, first, second);
    }

    [Fact]
    public void TwentyThousandAlternatingRulesSplitAndKeepFirstMatchOrder()
    {
        const int n = 20_000;
        using var p = Load(Xdp, Verdict.Accept, Enumerable.Range(0, n).Select(Alternating).ToArray(), lowering: Linear);
        Assert.NotEmpty(p.Compiled.Segments);
        Assert.Equal(p.Compiled.Segments.Length, p.Segments.Count);
        foreach (var i in new[] { 0, 1, n / 2 + 2, n / 2 + 3, n - 1 })
        {
            Assert.Equal(XdpDrop, p.Run(From(Source(i))));
            Assert.Equal(1UL, p.Counter((ulong)i).Packets);
        }
        // tcp dport 9: rule 3 (`!= 9`) does not match, the `==`, range and prefix rules still do
        Assert.Equal(XdpPass, p.Run(From(Source(n - 1), dport: 9)));
        Assert.Equal(XdpDrop, p.Run(From(Source(n - 2), dport: 9)));
        Assert.Equal(XdpPass, p.Run(From("10.250.0.1")));
        Assert.Equal(6UL, Enumerable.Range(0, n).Aggregate(0UL, (s, i) => s + p.Counter((ulong)i).Packets));
    }

    /// <summary>Small segments: the same mechanism on a few rules, at every flavor.</summary>
    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    [InlineData("nf")]
    public void SmallSegmentsAtEveryHook(string at)
    {
        var (hook, drop, accept) = at switch
        {
            "xdp" => (Xdp, XdpDrop, XdpPass),
            "tc" => (TcIn, TcShot, TcOk),
            _ => (NfIn4, NfDrop, NfAccept),
        };
        const int n = 200;
        var rs = Harness.Ruleset(hook, Verdict.Accept, Enumerable.Range(0, n).Select(Alternating).ToArray());
        using var p = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: Linear, segmentInstructions: 500));
        Assert.True(p.Compiled.Segments.Length >= 5, $"{p.Compiled.Segments.Length} segments");
        foreach (var i in new[] { 0, 77, n - 1 })
        {
            Assert.Equal(drop, p.Run(From(Source(i))));
            Assert.Equal(1UL, p.Counter((ulong)i).Packets);
        }
        Assert.Equal(accept, p.Run(From("10.250.0.1")));
    }

    /// <summary>
    /// A jump to a regular chain whose return goes on with the next rule, an accept in the first base chain that goes
    /// on with the second base chain (started by its entry slot), and a return in the base chain (its policy).
    /// </summary>
    [Fact]
    public void JumpsReturnsAndAcceptIntoTheNextBaseChainAcrossSegments()
    {
        const int n = 120;
        var rules = Enumerable.Range(0, n).Select(Alternating).ToList();
        // early: 10.9.9.9 jumps to `sub`, which counts and returns; a later rule then accepts it
        // first segment: 10.6.6.6 is accepted, which goes on with the second base chain in a later segment
        rules.Insert(1, new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, V4("10.6.6.6"))), Verdict.Accept, 904));
        rules.Insert(3, new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, V4("10.9.9.9"))), Verdict.Jump("sub"), 900));
        rules.Add(new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, V4("10.9.9.9"))), Verdict.Accept, 901));
        // late: 10.8.8.8 returns from the base chain: its policy (drop)
        rules.Add(new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, V4("10.8.8.8"))), Verdict.Return, 902));
        rules.Add(Counted(903, Verdict.Accept));
        var sub = new Chain("sub", ValueList.Of(Counted(910, Verdict.Return, Matcher.Eq(Fields.Tcp.Dport, U16(1000)))));
        var first = new BaseChain("t/first", Xdp, 0, Verdict.Drop, rules.ToValueList());
        // the second chain drops what the first accepted from 10.9.9.9 and 10.7.7.7 (rule 903)
        var second = new BaseChain("t/second", Xdp, 10, Verdict.Accept, ValueList.Of(
            Counted(920, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("10.9.9.9"))),
            Counted(921, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("10.6.6.6")))));
        var rs = new Ruleset(ValueList.Of(first, second), ValueList.Of(sub), ValueList.Of<Backend.Ir.Set>());
        using var p = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: Linear, segmentInstructions: 400));
        Assert.True(p.Compiled.Segments.Length >= 3, $"{p.Compiled.Segments.Length} segments");
        Assert.Contains(ProgramCompiler.ChainEntrySlots + 1, p.Compiled.TailCallSlots.Keys);

        Assert.Equal(XdpDrop, p.Run(From("10.6.6.6")));
        Assert.Equal((1UL, 1UL), (p.Counter(904).Packets, p.Counter(921).Packets));
        Assert.Equal(XdpDrop, p.Run(From("10.9.9.9")));
        Assert.Equal((1UL, 1UL, 1UL, 1UL), (p.Counter(900).Packets, p.Counter(910).Packets, p.Counter(901).Packets, p.Counter(920).Packets));
        Assert.Equal(XdpDrop, p.Run(From("10.8.8.8")));
        Assert.Equal((1UL, 0UL), (p.Counter(902).Packets, p.Counter(903).Packets));
        Assert.Equal(XdpPass, p.Run(From("10.7.7.7")));
        Assert.Equal((1UL, 1UL), (p.Counter(903).Packets, p.Counter(920).Packets));
    }

    /// <summary>
    /// Pinned, a split program keeps all its segments in its pinned prog array after the process closes its fds,
    /// and adoption checks that every slot holds the pinned segment it should (fail closed: else it refuses).
    /// </summary>
    [Fact]
    public void APinnedSplitProgramIsAdoptedWithEverySegment()
    {
        OnBpfFs(mount =>
        {
            var dir = Path.Combine(mount, "prog");
            var rs = Harness.Ruleset(Xdp, Verdict.Accept, Enumerable.Range(0, 100).Select(Alternating).ToArray());
            var compiled = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: Linear, segmentInstructions: 500);
            using (var p = LoadedProgram.Load(compiled))
            {
                Assert.Equal(XdpDrop, p.Run(From(Source(99))));
                p.Pin(dir);
            }
            using (var q = LoadedProgram.Adopt(compiled, dir))
            {
                Assert.Equal(compiled.Segments.Length, q.Segments.Count);
                Assert.Equal(1UL, q.Counter(99).Packets);
                Assert.Equal(XdpDrop, q.Run(From(Source(99))));
                Assert.Equal(2UL, q.Counter(99).Packets);
            }
            // a slot that does not hold its pinned segment: not adopted
            using (var array = Backend.Libbpf.BpfMap.Open(Path.Combine(dir, "map_" + CompiledProgram.SegmentsMap)))
                array.Delete(BitConverter.GetBytes(2));
            Assert.Throws<InvalidDataException>(() => LoadedProgram.Adopt(compiled, dir));
        });
    }

    [Fact]
    public void MoreSegmentsThanTailCallsIsAClearCodegenError()
    {
        var rs = Harness.Ruleset(Xdp, Verdict.Accept, Enumerable.Range(0, 400).Select(Alternating).ToArray());
        var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: Linear, segmentInstructions: 100));
        Assert.Contains("33 tail calls", e.Message);
    }
}
