using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Per-element counters (BPF_PROG_TEST_RUN), as nft_lookup_eval runs an element's statements: every packet a
/// positive lookup or a verdict map matched counts in the found element's slot; `!= @s` counts nothing; a
/// prefix element counts every address it holds in its one slot; an expired element is a miss and counts nothing.
/// </summary>
public class ElementCounterTests
{
    static readonly MatchKey Saddr = new(Fields.Ip.Saddr);
    static byte[] From(string saddr) => PacketBuilder.Ether().Ipv4(saddr, "198.18.0.2").Udp(1234, 53);

    static SetElement Counting(string saddr, ulong id) =>
        SetElement.Exact(V4(saddr)) with { Statements = ValueList.Of<Statement>(new CounterStatement(id)) };

    static Backend.Ir.Set Set(params SetElement[] elements) => new("t/s", Saddr, SetData.NoData, elements.ToValueList());

    [Fact]
    public void AMatchCountsTheFoundElementAsTheRulesOwnCounterCountsThePacket()
    {
        using var p = Load(NfIn4, Verdict.Accept, [Counted(1, Verdict.Drop, Matcher.InSet(Saddr, "t/s"))],
            sets: [Set(Counting("198.19.0.1", 10), Counting("198.19.0.2", 11), SetElement.Exact(V4("198.19.0.3")))]);
        Assert.Equal(NfDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(NfDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(NfDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(NfDrop, p.Run(From("198.19.0.3"))); // an element without a counter matches and counts nowhere
        Assert.Equal(NfAccept, p.Run(From("198.19.0.9")));
        var rule = p.Counter(1);
        Assert.Equal(4UL, rule.Packets);
        Assert.Equal((2UL, rule.Bytes / 2), p.Counter(10));
        Assert.Equal((1UL, rule.Bytes / 4), p.Counter(11));
    }

    [Fact]
    public void ANegatedLookupCountsNoElement()
    {
        using var p = Load(NfIn4, Verdict.Accept, [Counted(1, Verdict.Drop, Matcher.InSet(Saddr, "t/s", negated: true))],
            sets: [Set(Counting("198.19.0.1", 10))]);
        Assert.Equal(NfAccept, p.Run(From("198.19.0.1")));
        Assert.Equal(NfDrop, p.Run(From("198.19.0.9")));
        Assert.Equal(1UL, p.Counter(1).Packets);
        Assert.Equal((0UL, 0UL), p.Counter(10));
    }

    [Fact]
    public void AVerdictMapCountsTheElementWhoseVerdictRuns()
    {
        var vmap = new Backend.Ir.Set("t/v", Saddr, SetData.VerdictData, ValueList.Of(
            Counting("198.19.0.1", 10) with { Verdict = Verdict.Drop }, Counting("198.19.0.2", 11) with { Verdict = Verdict.Accept }));
        using var p = Load(Xdp, Verdict.Accept, [new Rule(Verdict.VMap(Saddr, "t/v"))], sets: [vmap]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.3")));
        Assert.Equal(1UL, p.Counter(10).Packets);
        Assert.Equal(2UL, p.Counter(11).Packets);
    }

    [Fact]
    public void APrefixElementCountsEveryAddressItHoldsInOneSlot()
    {
        var prefix = new SetElement(ValueList.Of<KeyPart>(new KeyPart.Prefix(V4("198.19.0.0"), 24)),
            Statements: ValueList.Of<Statement>(new CounterStatement(10)));
        using var p = Load(NfIn4, Verdict.Accept, [Drop(Matcher.InSet(Saddr, "t/s"))], sets: [Set(prefix, Counting("198.20.0.1", 11))]);
        Assert.Equal(NfDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(NfDrop, p.Run(From("198.19.0.200")));
        Assert.Equal(NfDrop, p.Run(From("198.20.0.1")));
        Assert.Equal(NfAccept, p.Run(From("198.19.1.1")));
        Assert.Equal(2UL, p.Counter(10).Packets);
        Assert.Equal(1UL, p.Counter(11).Packets);
    }

    [Fact]
    public void AnExpiredElementCountsNothing()
    {
        var now = KernelClock.Jiffies64();
        var set = new Backend.Ir.Set("t/s", Saddr, SetData.NoData, ValueList.Of(
            Counting("198.19.0.1", 10) with { Expires = now + 100_000 }, Counting("198.19.0.2", 11) with { Expires = now - 1 }), Timeouts: true);
        using var p = Load(NfIn4, Verdict.Accept, [Drop(Matcher.InSet(Saddr, "t/s"))], sets: [set]);
        Assert.Equal(NfDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(NfAccept, p.Run(From("198.19.0.2")));
        Assert.Equal(1UL, p.Counter(10).Packets);
        Assert.Equal(0UL, p.Counter(11).Packets);
    }

    [Fact]
    public void AStaticInterfaceLookupStillRunsToCountItsElement()
    {
        var ifnames = new Backend.Ir.Set("t/i", new MatchKey(Fields.IifName), SetData.NoData, ValueList.Of(
            SetElement.Exact(Value.IfName("lo")) with { Statements = ValueList.Of<Statement>(new CounterStatement(10)) }));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(new MatchKey(Fields.IifName), "t/i"))], sets: [ifnames]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(1UL, p.Counter(10).Packets);
    }
}
