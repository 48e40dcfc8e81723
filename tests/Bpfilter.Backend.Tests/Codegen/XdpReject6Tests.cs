using System.Net;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// netdev ingress `reject` at XDP for IPv6 frames (BPF_PROG_TEST_RUN): the reply nft_reject_netdev
/// sends (nf_reject_skb_v6_tcp_reset / nf_reject_skb_v6_unreach), built independently here with
/// PacketLayers, or a drop where the kernel sends none. Hop limit 64: net.ipv6.conf.all.hop_limit of
/// the test's namespace.
/// </summary>
public class XdpReject6Tests
{
    const string S = "2001:db8::1", D = "2001:db8::2";
    static readonly Matcher Tcp = Matcher.Eq(Fields.L4Proto, U8(6));

    static int L3(byte[] f) => f[12] == 0x81 || f[12] == 0x88 ? 18 : 14;
    static IPAddress Saddr(byte[] f) => new(f.AsSpan(L3(f) + 8, 16));
    static IPAddress Daddr(byte[] f) => new(f.AsSpan(L3(f) + 24, 16));

    static byte[] Reply(byte[] original, int nextHeader, byte[] l4) =>
        PacketLayers.Ethernet(original[6..12], original[0..6], [], PacketLayers.EtherIPv6,
            PacketLayers.Ipv6(Daddr(original), Saddr(original), nextHeader, l4, hopLimit: 64));

    static byte[] Rst(byte[] original, int thoff, byte flags, uint seq, uint ack) =>
        Reply(original, PacketLayers.ProtoTcp, PacketLayers.Tcp(Daddr(original), Saddr(original),
            (ushort)(original[thoff + 2] << 8 | original[thoff + 3]), (ushort)(original[thoff] << 8 | original[thoff + 1]),
            flags, [], seq, ack, window: 0));

    static byte[] Unreachable(byte[] original, byte code, int quoted)
    {
        var m = PacketLayers.Icmp(Daddr(original), Saddr(original), true, 1, code, 0, 0, original.AsSpan(L3(original), quoted));
        return Reply(original, PacketLayers.ProtoIcmpV6, m);
    }

    static void AssertReply(byte[] expected, (uint Verdict, byte[] Frame) got)
    {
        Assert.Equal(XdpTx, got.Verdict);
        Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(got.Frame));
    }

    [Fact]
    public void SynGetsRstAckOverIpv6()
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Tcp);
        byte[] syn = PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22, flags: 0x02, seq: 1000).Payload(10);
        AssertReply(Rst(syn, 54, 0x14, 0, 1000 + 1 + 10), Answer(p, syn));
        byte[] ack = PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22, flags: 0x18, seq: 5, ack: 0xfffffff0).Payload(100);
        AssertReply(Rst(ack, 54, 0x04, 0xfffffff0, 0), Answer(p, ack));
    }

    [Fact]
    public void ExtensionHeadersAreSkippedAndATagRemoved()
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Tcp);
        byte[] syn = PacketBuilder.Ether().Ipv6(S, D, (0, 8), (43, 24), (60, 16)).Tcp(40000, 22, seq: 7).Payload(3);
        AssertReply(Rst(syn, 54 + 48, 0x14, 0, 7 + 1 + 3), Answer(p, syn));
        byte[] tagged = PacketBuilder.Ether(vlanId: 20).Ipv6(S, D, (44, 0)).Tcp(40000, 22, seq: 7).Payload(3);
        AssertReply(Rst(tagged, 18 + 40 + 8, 0x14, 0, 7 + 1 + 3), Answer(p, tagged));
    }

    [Fact]
    public void NoResetToARstANonFirstFragmentOrABadChecksum()
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22, flags: 0x04).Payload(10)));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv6(S, D, (44, 2)).Tcp(40000, 22).Payload(10)));
        byte[] bad = PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22).Payload(10);
        bad[^1] ^= 1;
        Assert.Equal(XdpDrop, p.Run(bad));
        // skb->len is not trimmed to payload_len for the reset: trailing bytes are summed (and fail here)
        byte[] trailing = [.. PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22).Payload(10).Build(), 1, 2, 3, 4];
        Assert.Equal(XdpDrop, p.Run(trailing));
        byte[] multicast = PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22).Payload(10);
        multicast[0] = 0x33;
        Assert.Equal(XdpDrop, p.Run(multicast));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 4)]
    [InlineData(2, 3)]
    [InlineData(3, 1)]
    public void IcmpxCodesMapAsTheKernelMapsThemForIpv6(byte icmpx, byte icmpv6)
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpxUnreachable, icmpx));
        byte[] udp = PacketBuilder.Ether().Ipv6(S, D).Udp(5353, 53, payload: 31);
        AssertReply(Unreachable(udp, icmpv6, udp.Length - 14), Answer(p, udp));
    }

    [Fact]
    public void TheQuoteStopsAt1220BytesAndKeepsTrailingBytes()
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpUnreachable, 4));
        byte[] big = PacketBuilder.Ether().Ipv6(S, D).Udp(5353, 53, payload: 1400);
        AssertReply(Unreachable(big, 4, 1220), Answer(p, big));
        // payload_len covers the checksum, the quote takes what follows the network header
        byte[] trailing = [.. PacketBuilder.Ether().Ipv6(S, D).Icmp(128, proto: 58).Payload(20).Build(), 9, 9, 9, 9];
        AssertReply(Unreachable(trailing, 4, trailing.Length - 14), Answer(p, trailing));
    }

    [Fact]
    public void NoUnreachableAboutAnUnreachableOrABadChecksum()
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpxUnreachable, 1));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv6(S, D).Icmp(1, 4, proto: 58).Payload(48)));
        byte[] badEcho = PacketBuilder.Ether().Ipv6(S, D).Icmp(128, proto: 58).Payload(20);
        badEcho[^1] ^= 1;
        Assert.Equal(XdpDrop, p.Run(badEcho));
        byte[] noChecksum = PacketBuilder.Ether().Ipv6(S, D).Udp(5353, 53, payload: 20);
        noChecksum[60] = noChecksum[61] = 0;
        AssertReply(Unreachable(noChecksum, 4, noChecksum.Length - 14), Answer(p, noChecksum));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv6(S, D, (44, 2)).Udp(5353, 53).Payload(10)));
    }

    [Fact]
    public void AFamilyIndependentRuleAnswersEachFrameByItsEtherType()
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Tcp);
        Assert.Equal(XdpTx, p.Run(PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(40000, 22).Payload(10)));
        Assert.Equal(XdpTx, p.Run(PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22).Payload(10)));
        var reply = Answer(p, PacketBuilder.Ether().Ipv6(S, D).Tcp(40000, 22).Payload(10)).Frame;
        Assert.Equal((0x86, 0xdd), (reply[12], reply[13]));
    }
}
