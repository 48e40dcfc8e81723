using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Per-element `limit` and `quota` (BPF_PROG_TEST_RUN), as nft_lookup_eval runs a found element's statements
/// (nft_set_elem_update_expr): in order, each element on its own state, the first that breaks ends them and
/// breaks the rule (a verdict map's verdict included); `!= @s` runs none. Rates are one per minute, so the
/// time the test takes refills nothing.
/// </summary>
public class ElementStatementTests
{
    static readonly MatchKey Saddr = new(Fields.Ip.Saddr);
    static byte[] From(string saddr) => PacketBuilder.Ether().Ipv4(saddr, "198.18.0.2").Udp(1234, 53);
    static readonly ulong Len = (ulong)From("198.19.0.1").Length - 14; // skb->len at XDP: from the network header

    static LimitStatement PerMinute(uint burst, ulong slot, bool over = false) =>
        new(1, TimeSpan.FromMinutes(1), burst, LimitType.Packets, over) { StateSlot = slot };

    static SetElement With(string saddr, params Statement[] statements) =>
        SetElement.Exact(V4(saddr)) with { Statements = statements.ToValueList() };

    static Backend.Ir.Set Set(params SetElement[] elements) => new("t/s", Saddr, SetData.NoData, elements.ToValueList());

    [Fact]
    public void AnElementsLimitBreaksTheRuleBeyondItsBurstAndEveryElementHasItsOwnBucket()
    {
        using var p = Load(Xdp, Verdict.Accept, [Counted(1, Verdict.Drop, Matcher.InSet(Saddr, "t/s"))],
            sets: [Set(With("198.19.0.1", PerMinute(2, 0)), With("198.19.0.2", PerMinute(2, 1)), SetElement.Exact(V4("198.19.0.3")))]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1"))); // beyond the burst: the lookup breaks, the rule's counter does not count
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.3"))); // no statements: always matches
        Assert.Equal(5UL, p.Counter(1).Packets);
    }

    [Fact]
    public void AnElementsLimitOverBreaksWithinTheBurstAndMatchesBeyondIt()
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Saddr, "t/s"))], sets: [Set(With("198.19.0.1", PerMinute(2, 0, over: true)))]);
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
    }

    [Fact]
    public void AStatementBeforeAQuotaRunsForEveryPacketAndOneAfterOnlyWhileTheQuotaPasses()
    {
        // 198.19.0.1: counter, then quota until 2 packets; 198.19.0.2: quota over 1 packet, then counter
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Saddr, "t/s"))], sets: [Set(
            With("198.19.0.1", new CounterStatement(10), new QuotaStatement(2 * Len, false, 0)),
            With("198.19.0.2", new QuotaStatement(Len, true, 1), new CounterStatement(11)))]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.2"))); // consumed = the quota: not over yet, the counter after it does not run
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(3UL, p.Counter(10).Packets);
        Assert.Equal(1UL, p.Counter(11).Packets);
        Assert.Equal(3 * Len, p.Quotas!.Read(0)); // every packet is added, also those beyond the quota
        Assert.Equal(2 * Len, p.Quotas!.Read(1));
    }

    [Fact]
    public void ElementsWithQuotasOfDifferentSizesEachRunTheirOwn()
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Saddr, "t/s"))], sets: [Set(
            With("198.19.0.1", new QuotaStatement(Len, false, 0)), With("198.19.0.2", new QuotaStatement(3 * Len, false, 1)))]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1")));
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.2")));
    }

    [Fact]
    public void ANegatedLookupRunsNoElementStatement()
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Saddr, "t/s", negated: true))],
            sets: [Set(With("198.19.0.1", new QuotaStatement(Len, false, 0)))]);
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.9")));
        Assert.Null(p.Quotas); // the program holds no quota code at all
    }

    [Fact]
    public void AVerdictMapElementWhoseLimitBreaksSendsThePacketToTheNextRule()
    {
        var vmap = new Backend.Ir.Set("t/v", Saddr, SetData.VerdictData, ValueList.Of(
            With("198.19.0.1", PerMinute(1, 0)) with { Verdict = Verdict.Drop }));
        using var p = Load(Xdp, Verdict.Drop, [new Rule(Verdict.VMap(Saddr, "t/v")), Counted(5, Verdict.Accept)], sets: [vmap]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.1"))); // the limit broke: not the element's drop, the next rule's accept
        Assert.Equal(1UL, p.Counter(5).Packets);
    }
}
