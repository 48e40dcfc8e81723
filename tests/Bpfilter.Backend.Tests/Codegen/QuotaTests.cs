using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// `quota` in BPF (BPF_PROG_TEST_RUN): nft_quota adds the packet's length to the shared consumed bytes
/// first, then `until` passes while consumed &lt;= bytes and `over` once consumed &gt; bytes. Lengths are
/// counted as counters count them (skb->len: from the network header at ingress and at netfilter hooks).
/// </summary>
public class QuotaTests
{
    static readonly byte[] Packet = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1234, 53);
    static readonly ulong Len = (ulong)Packet.Length - 14;
    static readonly Matcher Dns = Matcher.Eq(Fields.Udp.Dport, U16(53));

    static Rule Quota(ulong bytes, bool over, ulong slot, Verdict v, ulong used = 0) =>
        new(ValueList.Of(Dns), ValueList.Of<Statement>(new QuotaStatement(bytes, over, slot) { Used = used }), v);

    [Fact]
    public void UntilPassesWhileTheConsumedBytesStayWithinTheQuotaBoundaryIncluded()
    {
        var len = Len;
        // exactly three packets fit: the third brings consumed to the quota itself, which still passes
        using var p = Xdp1(Quota(3 * len, over: false, slot: 0, Verdict.Drop));
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(5 * len, p.Quotas!.Read(0)); // every packet is added, also those over the quota
    }

    [Fact]
    public void OverPassesOnlyOnceTheQuotaIsExceeded()
    {
        var len = Len;
        using var p = Xdp1(Quota(2 * len, over: true, slot: 1, Verdict.Drop));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(Packet));
    }

    [Fact]
    public void ABrokenQuotaSendsThePacketToTheNextRuleAndCountersAfterItDoNotCount()
    {
        var len = Len;
        var quota = new Rule(ValueList.Of(Dns), ValueList.Of<Statement>(new QuotaStatement(len, false, 0), new CounterStatement(1)), Verdict.Accept);
        using var p = Xdp1(quota, Counted(2, Verdict.Drop, Dns));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(1UL, p.Counter(1).Packets);
        Assert.Equal(2UL, p.Counter(2).Packets);
    }

    [Fact]
    public void RulesSharingASlotShareOneQuotaAndResetTakesBackWhatWasRead()
    {
        var len = Len;
        var other = Matcher.Eq(Fields.Udp.Dport, U16(54));
        var a = new Rule(ValueList.Of(Dns), ValueList.Of<Statement>(new QuotaStatement(2 * len, false, 5)), Verdict.Drop);
        var b = new Rule(ValueList.Of(other), ValueList.Of<Statement>(new QuotaStatement(2 * len, false, 5)), Verdict.Drop);
        using var p = Xdp1(a, b);
        var packet54 = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1234, 54);
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(packet54));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(packet54));
        p.Quotas!.Subtract(5, p.Quotas.Read(5));
        Assert.Equal(XdpDrop, p.Run(packet54));
    }

    [Fact]
    public void AQuotaStartsFromTheQuotaMapValueAndWorksAtNetfilterHooks()
    {
        var ipLen = Len;
        using var p = Load(NfIn4, Verdict.Accept, [Quota(2 * ipLen, over: false, slot: 2, Verdict.Drop)]);
        p.Quotas!.Set(2, ipLen);
        Assert.Equal(NfDrop, p.Run(Packet));
        Assert.Equal(NfAccept, p.Run(Packet));
        Assert.Equal(3 * ipLen, p.Quotas.Read(2));
    }

    [Fact]
    public void ASlotBeyondTheQuotaMapIsRefusedNamingTheRule()
    {
        var rule = Quota(100, false, QuotaMap.Capacity, Verdict.Drop) with { Origin = "ip t c handle 3" };
        var rs = Ruleset(Xdp, Verdict.Accept, [rule]);
        var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.StartsWith("ip t c handle 3: quota state slot 4096", e.Message);
    }
}
