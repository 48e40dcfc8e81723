using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// The socket filter through which the kernel's copy of a rule (xt_bpf) spends a limit's bucket in the shared limit map
/// (BPF_PROG_TEST_RUN): it matches (returns 1) within the bucket and 0 beyond it, `over` the reverse, and it spends the
/// very bucket the rule's BPF program spends, so a packet counted by one side is a token the other does not get.
/// </summary>
public class LimitMatchTests
{
    static readonly byte[] Packet = LimitTests.Packet;
    static readonly Matcher Dns = LimitTests.Dns;

    static LimitStatement PerMinute(uint burst, bool over = false) => LimitTests.PerMinute(burst, over);

    static uint Run(Bpfilter.Backend.Libbpf.BpfProgram filter) => filter.TestRun(Packet).ReturnValue;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TheFilterSpendsTheBucketTheBpfRuleSpends(bool over)
    {
        var limit = PerMinute(3, over);
        using var p = Xdp1(new Rule(ValueList.Of(Dns), ValueList.Of<Statement>(limit), Verdict.Drop));
        // two of the three tokens in BPF (a plain limit's rule drops within the bucket, `over` passes there)
        for (var i = 0; i < 2; i++) Assert.Equal(over ? XdpPass : XdpDrop, p.Run(Packet));
        using var outer = LimitMatch.Outer(p.Limits!);
        using var filter = LimitMatch.Load(limit, outer);
        Assert.Equal(over ? 0u : 1u, Run(filter)); // the third token
        Assert.Equal(over ? 1u : 0u, Run(filter));
        Assert.Equal(over ? XdpDrop : XdpPass, p.Run(Packet)); // BPF finds it spent too
    }

    [Fact]
    public void AByteLimitCostsTheSkbLength()
    {
        // 100 bytes a minute with no burst: a bucket of 60 s, and a 28-byte IPv4 datagram costs 60 s * 28 / 100 (the test run pulls the Ethernet header, as at an ip hook skb->len is L3)
        var limit = new LimitStatement(100, TimeSpan.FromMinutes(1), 0, LimitType.Bytes) { StateSlot = 0 };
        using var p = Xdp1(new Rule(ValueList.Of(Dns), ValueList.Of<Statement>(limit), Verdict.Drop));
        using var outer = LimitMatch.Outer(p.Limits!);
        using var filter = LimitMatch.Load(limit, outer);
        Assert.Equal(1u, Run(filter));
        var (_, tokens) = p.Limits!.Read(0);
        var len = (ulong)(Packet.Length - 14);
        Assert.Equal(limit.Max - limit.Nsecs * len / limit.Rate, tokens);
    }
}
