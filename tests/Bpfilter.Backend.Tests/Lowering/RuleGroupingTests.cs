using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Xunit.Abstractions;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Lowering;

public class RuleGroupingTests(ITestOutputHelper output)
{
    private static byte[] Udp4(string src, ushort dport = 53) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Udp(1234, dport);
    private static byte[] Tcp4(string src, ushort dport) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport, 0x02);

    private static string Addr(int i) => $"198.18.{i / 250}.{i % 250 + 1}";

    private static Rule SaddrRule(int i, Verdict v) => Counted((ulong)(100 + i), v, Matcher.Eq(Fields.Ip.Saddr, V4(Addr(i))));

    /// <summary>The sub chain counts what it sees and returns; jumps to it come back to the next rule.</summary>
    private static readonly Chain Sub = new("t/sub", ValueList.Of(Counted(9, Verdict.Return)));
    private static readonly Chain Gone = new("t/gone", ValueList.Of(Counted(8, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(53)))));

    [Fact]
    public void ARunOfSameShapeRulesBecomesOneLookupWithPerRuleCounters()
    {
        var rs = Ruleset(Xdp, Verdict.Accept,
        [
            Drop(Matcher.Eq(Fields.Tcp.Dport, U16(22))), // another shape: stays a rule
            SaddrRule(0, Verdict.Accept), SaddrRule(1, Verdict.Drop), SaddrRule(2, Verdict.Jump("t/sub")),
            SaddrRule(3, Verdict.Goto("t/gone")),
            Counted(50, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4(Addr(1)))), // same key as rule 1 (drop): never reached
            SaddrRule(4, Verdict.Accept),
            Counted(51, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4(Addr(2)))), // same key as a jump: reached after the return
            SaddrRule(5, Verdict.Drop),
        ], chains: [Sub, Gone]);
        var lowered = new RuleGrouping(minRun: 4).Run(rs);
        var rules = lowered.BaseChains[0].Rules;
        Assert.Equal(4, rules.Count);
        Assert.Equal(rs.BaseChains[0].Rules[0], rules[0]);
        var vmap = Assert.IsType<VerdictMapVerdict>(rules[1].Verdict);
        Assert.Equal(new MatchKey(Fields.Ip.Saddr), vmap.Key);
        var set = lowered.FindSet(vmap.Map)!;
        Assert.Equal(5, set.Elements.Count);
        Assert.Equal(
            "198.18.0.1 counter #100 : accept, 198.18.0.2 counter #101 : drop, 198.18.0.3 counter #102 : jump t/sub, " +
            "198.18.0.4 counter #103 : goto t/gone, 198.18.0.5 counter #104 : accept",
            string.Join(", ", set.Elements.Select(e => e.Format(set.Key))));
        Assert.Equal(ValueList.Of(50UL), lowered.BaseChains[0].IdleCounters);
        // the run ends before the rule with the jump's key; the two left are too short to group
        Assert.Equal(rs.BaseChains[0].Rules.Skip(7), rules.Skip(2));
    }

    [Fact]
    public void RulesThatCannotBeGroupedStayAsTheyAre()
    {
        var rs = Ruleset(Xdp, Verdict.Accept,
        [
            .. Enumerable.Range(0, 3).Select(i => SaddrRule(i, Verdict.Accept)),
            Accept(Matcher.Prefix(Fields.Ip.Saddr, V4("198.18.1.0"), 24)), // not ==
            .. Enumerable.Range(3, 3).Select(i => SaddrRule(i, Verdict.Accept)),
            Counted(7, Verdict.Continue, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.9"))), // continue
            .. Enumerable.Range(6, 3).Select(i => SaddrRule(i, Verdict.Return)),
            new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.9"))),
                ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromSeconds(1), 0)), Verdict.Accept), // a statement
        ]);
        Assert.Equal(rs, new RuleGrouping(minRun: 4).Run(rs));
        // with shorter runs allowed, only the two runs of `==` accept rules are grouped
        var two = new RuleGrouping(minRun: 2).Run(rs).BaseChains[0].Rules;
        Assert.Equal(2, two.Count(r => r.Verdict is VerdictMapVerdict));
        Assert.Equal(rs.BaseChains[0].Rules.Count - 4, two.Count);
    }

    public static TheoryData<string> Hooks() => ["xdp", "netfilter"];

    /// <summary>
    /// The same chain compiled with and without grouping gives the same verdicts and counters on packets
    /// matching the first, a middle and the last rule of the run, none of them, and a jump that comes back.
    /// </summary>
    [Theory]
    [MemberData(nameof(Hooks))]
    public void GroupedAndUngroupedProgramsAgree(string hook)
    {
        const int n = 200;
        var h = hook == "xdp" ? Xdp : NfIn4;
        var rules = new List<Rule> { Counted(1, Verdict.Continue, Matcher.Eq(Fields.L4Proto, U8(17))) };
        for (var i = 0; i < n; i++)
            rules.Add(SaddrRule(i, i switch { 150 => Verdict.Jump("t/sub"), 151 => Verdict.Goto("t/gone"), _ when i % 3 == 0 => Verdict.Drop, _ => Verdict.Accept }));
        rules.Add(Counted(2, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4(Addr(150))))); // after the jump comes back
        rules.Add(Counted(3, Verdict.Accept, Matcher.Eq(Fields.Udp.Dport, U16(53))));
        var rs = Ruleset(h, Verdict.Drop, rules.ToArray(), chains: [Sub, Gone]);

        var grouped = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: new LoweringPipeline(new RuleGrouping()));
        var plain = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None);
        output.WriteLine($"{hook}: {n} `ip saddr == X counter` rules: {plain.Instructions.Length} instructions ungrouped, " +
            $"{grouped.Instructions.Length} grouped");
        Assert.True(grouped.Instructions.Length * 5 < plain.Instructions.Length);
        Assert.Equal(plain.CounterSlots.Keys.Order(), grouped.CounterSlots.Keys.Order());
        Assert.Equal(grouped.Disassembly, ProgramCompiler.Compile(rs, rs.BaseChains.Items).Disassembly); // the default pipeline groups

        using var a = LoadedProgram.Load(grouped);
        using var b = LoadedProgram.Load(plain);
        var packets = new List<(byte[] Packet, uint Nf)>
        {
            (Udp4(Addr(0)), NfDrop), (Udp4(Addr(1)), NfAccept), (Udp4(Addr(100)), NfAccept), (Udp4(Addr(99)), NfDrop),
            (Udp4(Addr(n - 1)), NfAccept), (Udp4("198.18.3.1"), NfAccept), (Udp4("198.18.3.1", 54), NfDrop),
            (Tcp4(Addr(n - 1), 80), NfAccept), (Tcp4("198.18.3.1", 80), NfDrop),
            (Udp4(Addr(150)), NfDrop), (Udp4(Addr(151)), NfDrop), (Udp4(Addr(151), 54), NfDrop),
        };
        foreach (var (packet, nf) in packets)
        {
            var expected = hook == "xdp" ? (nf == NfAccept ? XdpPass : XdpDrop) : nf;
            Assert.Equal(expected, b.Run(packet));
            Assert.Equal(expected, a.Run(packet));
        }
        foreach (var id in plain.CounterSlots.Keys)
            Assert.Equal(b.Counter(id), a.Counter(id));
        var len = hook == "xdp" ? 46UL : 46UL; // both count from the network header: 20 + 8 + 18 (UDP) / 20 + 20 + 6 (TCP)
        Assert.Equal((1UL, len), a.Counter(100));       // first
        Assert.Equal((1UL, len), a.Counter(100 + 100)); // middle
        Assert.Equal((2UL, 2 * len), a.Counter(100 + n - 1)); // last (UDP and TCP)
        Assert.Equal((1UL, len), a.Counter(100 + 150)); // the jump
        Assert.Equal((1UL, len), a.Counter(9));         // into t/sub and back
        Assert.Equal((1UL, len), a.Counter(2));         // to the rule after the run
        Assert.Equal((2UL, 2 * len), a.Counter(100 + 151)); // the goto
        Assert.Equal((1UL, len), a.Counter(8));         // t/gone drops udp dport 53 only
        Assert.Equal((1UL, len), a.Counter(3));         // no rule of the run: udp dport 53 accepted
    }
}
