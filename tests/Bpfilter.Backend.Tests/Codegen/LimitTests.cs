using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// `limit` in BPF (BPF_PROG_TEST_RUN), nft_limit's token bucket: a new bucket is full (tokens_max, in
/// nanoseconds), each packet refills it by the time since the last one (capped) and takes its cost when
/// enough is left; a plain limit breaks when not, `over` breaks when it does. Rates are chosen so that
/// the time the test itself takes cannot refill a token (one per minute), except where refill is tested.
/// </summary>
public class LimitTests
{
    internal static readonly byte[] Packet = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1234, 53);
    internal static readonly Matcher Dns = Matcher.Eq(Fields.Udp.Dport, U16(53));

    static Rule Limited(LimitStatement l, Verdict v) => new(ValueList.Of(Dns), ValueList.Of<Statement>(l), v);

    internal static LimitStatement PerMinute(uint burst, bool over = false, ulong slot = 0) =>
        new(1, TimeSpan.FromMinutes(1), burst, LimitType.Packets, over) { StateSlot = slot };

    [Fact]
    public void ThePacketsOfTheBurstPassBackToBackAndTheNextOneBreaks()
    {
        using var p = Xdp1(Limited(PerMinute(5), Verdict.Drop));
        for (var i = 0; i < 5; i++) Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet)); // broken: the next rule (none), then the policy
        Assert.Equal(XdpPass, p.Run(Packet));
        // the bucket holds less than one packet's cost (60 s), the rest of the minute refilling it
        var (last, tokens) = p.Limits!.Read(0);
        Assert.True(last > 0);
        Assert.True(tokens < 60_000_000_000UL, $"tokens {tokens}");
    }

    [Fact]
    public void OverBreaksWithinTheBurstAndMatchesBeyondIt()
    {
        using var p = Xdp1(Limited(PerMinute(2, over: true), Verdict.Drop));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(Packet));
    }

    [Fact]
    public void RulesSharingASlotShareOneBucket()
    {
        // two rules naming one limit object: the second takes what the first left
        var other = Matcher.Eq(Fields.Udp.Dport, U16(54));
        using var p = Xdp1(Limited(PerMinute(3), Verdict.Drop), new Rule(ValueList.Of(other), ValueList.Of<Statement>(PerMinute(3)), Verdict.Drop));
        var to54 = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1234, 54);
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpDrop, p.Run(to54));
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(to54));
        Assert.Equal(XdpPass, p.Run(Packet));
    }

    [Fact]
    public void TheBucketRefillsWithTimeUpToItsSize()
    {
        // 10/second, burst 1: one packet every 100 ms, never more than one saved up
        var l = new LimitStatement(10, TimeSpan.FromSeconds(1), 1);
        using var p = Xdp1(Limited(l, Verdict.Drop));
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
        Thread.Sleep(350); // 3.5 packets' worth of time, capped at the burst of 1
        Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
    }

    [Fact]
    public void ByteLimitsCostEachPacketItsLength()
    {
        // 100 bytes/minute, no burst: the bucket holds one minute (100 bytes) and a packet of len bytes costs
        // len * 600 ms; as many as fit pass back to back, the next would need seconds of refill, more than the
        // test takes even on a loaded machine
        const ulong perByte = 600_000_000UL;
        var len = (ulong)Packet.Length - 14; // skb->len at XDP: from the network header
        var l = new LimitStatement(100, TimeSpan.FromMinutes(1), 0, LimitType.Bytes);
        Assert.Equal(60_000_000_000UL, l.Max);
        using var p = Xdp1(Limited(l, Verdict.Drop));
        var fit = 100 / len;
        Assert.InRange(fit, 1UL, 3UL);
        Assert.True((fit + 1) * len - 100 >= 5, "the next packet needs at least 3 s of refill");
        for (var i = 0UL; i < fit; i++) Assert.Equal(XdpDrop, p.Run(Packet));
        Assert.Equal(XdpPass, p.Run(Packet));
        // what is left (plus the little refill since) is less than one packet's cost
        var tokens = p.Limits!.Read(0).Tokens;
        Assert.InRange(tokens, l.Max - fit * len * perByte, len * perByte - 1);
    }

    [Fact]
    public void TheVerifierTakesTheSpinLockAtEveryKindOfAttachPoint()
    {
        foreach (var hook in new[] { TcIn, TcOut, NfIn4 })
        {
            using var p = Load(hook, Verdict.Accept, [Limited(PerMinute(5), Verdict.Drop), Limited(new LimitStatement(1, TimeSpan.FromSeconds(1), 0, LimitType.Bytes, Over: true) { StateSlot = 1 }, Verdict.Drop)]);
            Assert.NotNull(p.Limits);
        }
    }

    [Theory]
    [InlineData(1UL, 60UL, 5U, true, 300_000_000_000UL)] // 1/minute burst 5: nsecs / rate * burst
    [InlineData(3UL, 1UL, 5U, true, 1_666_666_665UL)] // 3/second: the per-packet cost truncates first
    [InlineData(1048576UL, 1UL, 0U, false, 1_000_000_000UL)] // 1 mbytes/second: nsecs * (rate + burst) / rate
    [InlineData(1048576UL, 1UL, 524288U, false, 1_500_000_000UL)]
    public void TheBucketSizeIsNftLimitInits(ulong rate, ulong seconds, uint burst, bool packets, ulong max)
    {
        var l = new LimitStatement(rate, TimeSpan.FromSeconds(seconds), burst, packets ? LimitType.Packets : LimitType.Bytes);
        Assert.Equal(max, l.Max);
    }
}
