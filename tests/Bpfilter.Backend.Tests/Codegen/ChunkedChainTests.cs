using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Bpfilter.Testing;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// A regular chain too long for one verifier walk is split into chunks, functions called in order
/// (ProgramCompiler.Chunks.cs): the verdicts and counters of the unsplit and the inlined chain, and long chains load.
/// </summary>
public class ChunkedChainTests
{
    const int BigRules = 40;

    static byte[] Tcp4(string src, ushort dport) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport, 0x02);

    /// <summary>Functions per chain (entry without the chunk suffix) and whether each is global.</summary>
    static Dictionary<string, int> ChunksPerChain(CompiledProgram p) =>
        p.Functions.Keys.GroupBy(k => k.Split('#')[0]).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>
    /// Base: jump big (counted); ip saddr 10.9.9.9 accept (counted); policy drop. Big: rule i matches tcp dport 1000 + i
    /// and by turns drops 10.0.0.1, accepts, returns, jumps to inner or goes to tail, each counted. Inner (12 rules): drops
    /// 10.0.2.1 first, returns 10.9.9.9 last, falls through otherwise. Tail: accepts 10.0.3.1, else falls off (big returns).
    /// </summary>
    static Ruleset Nested(Hook hook)
    {
        ulong id = 100;
        Rule Port(int i, Verdict v, params Matcher[] more) =>
            Counted(++id, v, [Matcher.Eq(Fields.Tcp.Dport, U16((ulong)(1000 + i))), .. more]);
        var big = new Chain("t/big", Enumerable.Range(0, BigRules).Select(i => (i % 5) switch
        {
            0 => Port(i, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("10.0.0.1"))),
            1 => Port(i, Verdict.Accept),
            2 => Port(i, Verdict.Return),
            3 => Port(i, Verdict.Jump("t/inner")),
            _ => Port(i, Verdict.Goto("t/tail")),
        }).ToValueList());
        var inner = new Chain("t/inner", Enumerable.Range(0, 12).Select(j => j switch
        {
            0 => Counted(++id, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("10.0.2.1"))),
            11 => Counted(++id, Verdict.Return, Matcher.Eq(Fields.Ip.Saddr, V4("10.9.9.9"))),
            _ => Counted(++id, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4($"10.0.5.{j}"))),
        }).ToValueList());
        var tail = new Chain("t/tail", ValueList.Of(Counted(++id, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4("10.0.3.1")))));
        return Ruleset(hook, Verdict.Drop, [
            new Rule(ValueList<Matcher>.Empty, Verdict.Jump("t/big"), 1),
            Counted(2, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4("10.9.9.9"))),
        ], [big, inner, tail]);
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    [InlineData("nf")]
    public void AChunkedChainGivesTheVerdictsAndCountersOfTheUnsplitAndTheInlinedChain(string hook)
    {
        var h = hook switch { "xdp" => Xdp, "tc" => TcIn, _ => NfIn4 };
        var rs = Nested(h);
        // budgets small enough that big and inner are split into several chunks (and the base chain into segments)
        var chunked = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None, segmentInstructions: 200, segmentBranches: 30);
        var chunks = ChunksPerChain(chunked);
        Assert.True(chunks.Single(c => c.Key.Contains("t/big")).Value >= 4, string.Join(", ", chunks));
        Assert.True(chunks.Single(c => c.Key.Contains("t/inner")).Value >= 2, string.Join(", ", chunks));
        Assert.All(chunked.Functions.Values, Assert.True);
        using var split = LoadedProgram.Load(chunked);
        using var whole = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None));
        Assert.Equal(1, ChunksPerChain(whole.Compiled).Single(c => c.Key.Contains("t/big")).Value);
        using var inlined = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None, inlineRegularChains: true));

        uint accept = hook switch { "xdp" => XdpPass, "tc" => TcOk, _ => NfAccept }, drop = hook switch { "xdp" => XdpDrop, "tc" => TcShot, _ => NfDrop };
        // every rule of big (its first, last and every chunk boundary among them) and no rule, from sources each sub chain decides differently
        foreach (var src in new[] { "10.0.0.1", "10.0.2.1", "10.0.3.1", "10.9.9.9", "10.7.7.7" })
            for (var port = 1000; port <= 1000 + BigRules; port++)
            {
                var packet = Tcp4(src, (ushort)port);
                var expected = inlined.Run(packet);
                Assert.True(expected == whole.Run(packet), $"unsplit {src}:{port}");
                Assert.True(expected == split.Run(packet), $"chunked {src}:{port}");
            }
        foreach (var id in inlined.Compiled.CounterSlots.Keys)
        {
            Assert.True(inlined.Counter(id) == split.Counter(id), $"counter {id}: {inlined.Counter(id)} inlined, {split.Counter(id)} chunked");
            Assert.Equal(whole.Counter(id), split.Counter(id));
        }
        // spot checks against nf_tables' semantics
        Assert.Equal(drop, split.Run(Tcp4("10.0.0.1", 1000))); // first rule: drop
        Assert.Equal(accept, split.Run(Tcp4("10.7.7.7", 1000 + BigRules - 4))); // rule 36: accept, in the last chunk
        Assert.Equal(accept, split.Run(Tcp4("10.9.9.9", 1002))); // return from big: the base's next rule accepts
        Assert.Equal(drop, split.Run(Tcp4("10.7.7.7", 1002))); // return, then no base rule: policy drop
        Assert.Equal(drop, split.Run(Tcp4("10.0.2.1", 1003))); // nested jump into inner's first chunk: drop
        Assert.Equal(drop, split.Run(Tcp4("10.7.7.7", 1003))); // inner falls through: big goes on, no rule, returns, policy
        Assert.Equal(accept, split.Run(Tcp4("10.0.3.1", 1004))); // goto tail: accept
        Assert.Equal(drop, split.Run(Tcp4("10.0.0.1", 1004))); // tail falls off: big returns (rule 5 is not reached), policy
        Assert.Equal(accept, split.Run(Tcp4("10.9.9.9", 1000 + BigRules))); // no rule of big: the base's accept
    }

    /// <summary>
    /// n rules dropping tcp dport 20000 + i, by turns with nothing else, `tcp sport != 9`, `meta mark != 7` (tc) or
    /// `ip saddr != 10.9.9.9`, and `tcp sport 1024-65535`, in one regular chain jumped to once: linear code.
    /// </summary>
    static Ruleset Linear(Hook hook, int n)
    {
        var rules = Enumerable.Range(0, n).Select(i => Counted((ulong)(1000 + i), Verdict.Drop,
            [Matcher.Eq(Fields.Tcp.Dport, U16((ulong)(20000 + i))), .. (i % 4) switch
            {
                0 => Array.Empty<Matcher>(),
                1 => [Matcher.Ne(Fields.Tcp.Sport, U16(9))],
                2 => [Matcher.Ne(Fields.Ip.Saddr, V4("10.9.9.9"))],
                _ => [Matcher.Range(Fields.Tcp.Sport, U16(1024), U16(65535))],
            }])).ToArray();
        return Ruleset(hook, Verdict.Accept, [new Rule(ValueList<Matcher>.Empty, Verdict.Jump("t/big"), 1)], [new Chain("t/big", rules.ToValueList())]);
    }

    [Theory]
    [InlineData(3000)]
    [InlineData(10000)]
    public void ALongLinearChainLoadsInChunksAndDropsItsFirstBoundaryAndLastRule(int n)
    {
        var rs = Linear(Xdp, n);
        var compiled = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None);
        var chunks = compiled.Functions.Keys.Order().ToArray();
        Assert.True(chunks.Length >= 2, $"{chunks.Length} chunks");
        Assert.All(compiled.Functions.Values, Assert.True);
        using var p = LoadedProgram.Load(compiled);
        var verified = BpfInfo.VerifiedInstructions(p.Program.Fd.Value)!.Value;
        // the kernel's verified_insns, for the README's Limits: about the chain's instructions, once
        Console.WriteLine($"{n} rules: {chunks.Length} chunks, {compiled.InstructionCount} instructions, {verified} verified");
        Assert.True(verified < 2 * compiled.InstructionCount, $"{verified} verified for {compiled.InstructionCount} instructions");
        // the first rule of the second chunk: the first chunk holds the rules before it (one comment each)
        var entries = compiled.Functions.Keys.ToHashSet();
        var boundary = compiled.Instructions.SkipWhile(i => !i.Labels.Contains(chunks[0])).Skip(1)
            .TakeWhile(i => !i.Labels.Any(entries.Contains)).Count(i => i.Comment?.Contains("dport") == true);
        var ports = new[] { 20000, 20000 + boundary - 1, 20000 + boundary, 20000 + n / 2 + 1, 20000 + n - 1 }.Distinct().ToArray();
        foreach (var port in ports)
            Assert.True(XdpDrop == p.Run(Tcp4("10.0.0.1", (ushort)port)), $"port {port}");
        Assert.Equal(XdpPass, p.Run(Tcp4("10.0.0.1", (ushort)(20000 + n))));
        Assert.Equal(XdpPass, p.Run(Tcp4("10.9.9.9", (ushort)(20000 + 2)))); // rule 2 excludes this source
        Assert.Equal(1UL, p.Counter(1000).Packets);
        Assert.Equal(1UL, p.Counter((ulong)(1000 + boundary)).Packets);
        Assert.Equal(1UL, p.Counter((ulong)(1000 + n - 1)).Packets);
        Assert.Equal(0UL, p.Counter(1001).Packets);
        Assert.Equal((ulong)ports.Length + 2, p.Counter(1).Packets); // the jumping rule
    }

    [Fact]
    public void AChunkBoundaryCostsACallPerPacketAndNothingElse()
    {
        // the same 400-rule chain whole and in chunks of about 20 rules: a packet no rule matches crosses every boundary
        var rs = Linear(Xdp, 400);
        using var whole = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None));
        var compiled = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None, segmentInstructions: 1000);
        using var split = LoadedProgram.Load(compiled);
        var chunks = compiled.Functions.Count;
        Assert.True(chunks >= 10, $"{chunks} chunks");
        var miss = Tcp4("10.0.0.1", 30000);
        Assert.Equal(XdpPass, whole.Run(miss));
        Assert.Equal(XdpPass, split.Run(miss));
        // medians of 7 runs of 20,000 (BPF_PROG_TEST_RUN's average per run), for the README
        static uint Median(LoadedProgram p, byte[] packet) =>
            Enumerable.Range(0, 7).Select(_ => p.TestRun(packet, repeat: 20000).DurationNs).Order().ElementAt(3);
        var (w, c) = (Median(whole, miss), Median(split, miss));
        Console.WriteLine($"400 rules, no match: {w} ns whole, {c} ns in {chunks} chunks: {((double)c - w) / (chunks - 1):F1} ns per boundary");
        Assert.Equal(whole.Counter(1), split.Counter(1)); // the jump counted every run of both
        Assert.Equal(0UL, split.Counter(1000 + 399).Packets);
    }
}
