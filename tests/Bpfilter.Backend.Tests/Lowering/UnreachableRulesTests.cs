using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Lowering;

public class UnreachableRulesTests
{
    private static byte[] Udp4(string src, ushort dport = 53) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Udp(1234, dport);

    private static readonly Chain Sub = new("t/sub", ValueList.Of(
        Counted(20, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.5"))),
        Counted(21, Verdict.Return),
        Counted(22, Verdict.Drop),
        new Rule(Verdict.Accept)));

    /// <summary>Base chain: a counted match, an unconditional counted accept, then rules nf_tables never reaches.</summary>
    private static Ruleset Sample() => Ruleset(Xdp, Verdict.Drop,
    [
        Counted(1, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1"))),
        Counted(2, Verdict.Jump("t/sub"), Matcher.Eq(Fields.Udp.Dport, U16(53))),
        Counted(3, Verdict.Accept),
        Counted(4, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.3"))),
        new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromSeconds(1), 5), new CounterStatement(5)), Verdict.Drop),
    ], chains: [Sub]);

    [Fact]
    public void CutsAfterTheFirstUnconditionalTerminalRuleAndKeepsTheirCounters()
    {
        var lowered = new UnreachableRules().Run(Sample());
        var chain = lowered.BaseChains[0];
        Assert.Equal([1UL, 2UL, 3UL], chain.Rules.Select(r => r.CounterId!.Value));
        Assert.Equal([4UL, 5UL], chain.IdleCounters);
        var sub = lowered.FindChain("t/sub")!;
        Assert.Equal(2, sub.Rules.Count);
        Assert.Equal([22UL], sub.IdleCounters);
        Assert.Equal(lowered, new UnreachableRules().Run(lowered)); // nothing left to cut
    }

    [Fact]
    public void RulesThatMayNotEndTheChainAreKept()
    {
        var rs = Ruleset(Xdp, Verdict.Accept,
        [
            new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new QuotaStatement(100, false, 0)), Verdict.Drop), // a quota may break
            new Rule(Verdict.Jump("t/sub")), // a jump comes back
            new Rule(Verdict.Continue),
            new Rule(Verdict.VMap(Fields.Tcp.Dport, "svc")), // a miss goes on
            Counted(9, Verdict.Drop),
        ], chains: [Sub]);
        var lowered = new UnreachableRules().Run(rs);
        Assert.Equal(rs.BaseChains[0].Rules, lowered.BaseChains[0].Rules);
        Assert.True(lowered.BaseChains[0].IdleCounters.IsEmpty);
    }

    [Fact]
    public void LoweredProgramGivesTheSameVerdictsAndCounters()
    {
        var rs = Sample();
        // Without lowering the compiler would refuse the limit statement; nf_tables never runs it, so
        // the unlowered reference is the same ruleset without that unreachable rule.
        var reference = rs with
        {
            BaseChains = ValueList.Of(rs.BaseChains[0] with { Rules = rs.BaseChains[0].Rules.Take(4).ToValueList() }),
        };
        var lowered = ProgramCompiler.Compile(rs, rs.BaseChains.Items);
        var plain = ProgramCompiler.Compile(reference, reference.BaseChains.Items, lowering: LoweringPipeline.None);
        Assert.True(lowered.Instructions.Length <= plain.Instructions.Length);
        foreach (var id in new ulong[] { 1, 2, 3, 4, 5, 20, 21, 22 })
            Assert.Contains(id, lowered.CounterSlots.Keys); // every counter has a slot, even those that never count

        using var a = LoadedProgram.Load(lowered);
        using var b = LoadedProgram.Load(plain);
        byte[][] packets =
        [
            Udp4("198.18.0.1"), Udp4("198.18.0.3"), Udp4("198.18.0.5"), Udp4("198.18.0.6"),
            Udp4("198.18.0.3", 54), Udp4("198.18.0.5", 54),
        ];
        var expected = new uint[] { XdpDrop, XdpPass, XdpDrop, XdpPass, XdpPass, XdpPass };
        for (var i = 0; i < packets.Length; i++)
        {
            Assert.Equal(expected[i], a.Run(packets[i]));
            Assert.Equal(expected[i], b.Run(packets[i]));
        }
        foreach (var id in new ulong[] { 1, 2, 3, 4, 5, 20, 21, 22 })
            Assert.Equal(b.Counter(id), a.Counter(id));
        Assert.Equal((1UL, 46UL), a.Counter(1));
        Assert.Equal((3UL, 138UL), a.Counter(2));
        Assert.Equal((4UL, 184UL), a.Counter(3));
        Assert.Equal((1UL, 46UL), a.Counter(20));
        Assert.Equal((0UL, 0UL), a.Counter(4));
        Assert.Equal((0UL, 0UL), a.Counter(5));
        Assert.Equal((2UL, 92UL), a.Counter(21));
        Assert.Equal((0UL, 0UL), a.Counter(22));
    }
}
