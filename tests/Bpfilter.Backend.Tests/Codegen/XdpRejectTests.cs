using System.Net;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// netdev ingress `reject` at XDP (BPF_PROG_TEST_RUN): the frame comes back as the reply
/// nft_reject_netdev sends (XDP_TX), or is dropped without one where the kernel sends none. Expected
/// replies are built independently with PacketLayers from nf_reject_ipv4.c's rules.
/// </summary>
public class XdpRejectTests
{
    static readonly Matcher Ipv4Only = Matcher.Eq(Fields.Protocol, U16(0x0800));
    static readonly Matcher Tcp = Matcher.Eq(Fields.L4Proto, U8(6));

    /// <summary>The reply's Ethernet + IPv4 header (id 0, DF, TTL 64: the namespace's ip_default_ttl) around <paramref name="l4"/>.</summary>
    static byte[] Reply(byte[] original, int protocol, byte[] l4)
    {
        var ip = PacketLayers.Ipv4(Daddr(original), Saddr(original), protocol, l4, dontFragment: true, ttl: 64);
        return PacketLayers.Ethernet(original[6..12], original[0..6], [], PacketLayers.EtherIPv4, ip);
    }

    static int L3(byte[] f) => f[12] == 0x81 || f[12] == 0x88 ? 18 : 14;
    static IPAddress Saddr(byte[] f) => new(f.AsSpan(L3(f) + 12, 4));
    static IPAddress Daddr(byte[] f) => new(f.AsSpan(L3(f) + 16, 4));

    static byte[] Rst(byte[] original, byte flags, uint seq, uint ack) =>
        Reply(original, PacketLayers.ProtoTcp, PacketLayers.Tcp(Daddr(original), Saddr(original),
            (ushort)(original[L3(original) + 22] << 8 | original[L3(original) + 23]),
            (ushort)(original[L3(original) + 20] << 8 | original[L3(original) + 21]), flags, [], seq, ack, window: 0));

    static byte[] Unreachable(byte[] original, byte code, int quoted) =>
        Reply(original, PacketLayers.ProtoIcmp, PacketLayers.Icmp(Daddr(original), Saddr(original), false, 3, code, 0, 0,
            original.AsSpan(L3(original), quoted)));

    [Fact]
    public void SynGetsRstAckForEverySequenceNumberItUsed()
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Ipv4Only, Tcp);
        byte[] syn = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2", ttl: 9, id: 77).Tcp(40000, 22, flags: 0x02, seq: 1000).Payload(10);
        var (v, reply) = Answer(p, syn);
        Assert.Equal(XdpTx, v);
        Assert.Equal(Convert.ToHexString(Rst(syn, 0x14, 0, 1000 + 1 + 10)), Convert.ToHexString(reply));
    }

    [Fact]
    public void AnAckedSegmentGetsARstAtItsAckNumber()
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Ipv4Only, Tcp);
        byte[] ack = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(40000, 22, flags: 0x18, seq: 5, ack: 0xfffffff0).Payload(100);
        var (v, reply) = Answer(p, ack);
        Assert.Equal(XdpTx, v);
        Assert.Equal(Convert.ToHexString(Rst(ack, 0x04, 0xfffffff0, 0)), Convert.ToHexString(reply));
    }

    [Fact]
    public void ATaggedFrameIsAnsweredUntagged()
    {
        // the stack removed the tag before the ingress hook; the kernel's reply has none
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Ipv4Only, Tcp);
        byte[] syn = PacketBuilder.Ether(vlanId: 20).Ipv4("198.51.100.1", "198.51.100.2").Tcp(40000, 22, seq: 7).Payload(10);
        var (v, reply) = Answer(p, syn);
        Assert.Equal(XdpTx, v);
        Assert.Equal(Convert.ToHexString(Rst(syn, 0x14, 0, 7 + 1 + 10)), Convert.ToHexString(reply));
    }

    [Fact]
    public void UdpGetsPortUnreachableQuotingTheWholePacket()
    {
        // plain `reject` in netdev is icmpx port-unreachable: ICMP code 3 for IPv4
        using var p = Reject(new RejectVerdict(RejectType.IcmpxUnreachable, 1), Ipv4Only);
        byte[] udp = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Udp(5353, 53, payload: 31);
        var (v, reply) = Answer(p, udp);
        Assert.Equal(XdpTx, v);
        Assert.Equal(Convert.ToHexString(Unreachable(udp, 3, udp.Length - 14)), Convert.ToHexString(reply));
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 13)]
    public void IcmpxCodesMapAsTheKernelMapsThemForIpv4(byte icmpx, byte icmp)
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpxUnreachable, icmpx), Ipv4Only);
        byte[] echo = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Icmp(8).Payload(5);
        Assert.Equal(Convert.ToHexString(Unreachable(echo, icmp, echo.Length - 14)), Convert.ToHexString(Answer(p, echo).Frame));
    }

    [Fact]
    public void AnIpFieldLimitsTheRuleToIpv4()
    {
        // the lifter leaves `meta protocol ip` implied by `ip saddr`
        using var p = Reject(new RejectVerdict(RejectType.IcmpxUnreachable, 3), Matcher.Eq(Fields.Ip.Saddr, V4("198.51.100.1")));
        byte[] udp = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Udp(5353, 53, payload: 31);
        Assert.Equal(Convert.ToHexString(Unreachable(udp, 13, udp.Length - 14)), Convert.ToHexString(Answer(p, udp).Frame));
    }

    [Fact]
    public void ManyRejectRulesShareOneRoutinePerKindAndStillVerify()
    {
        // each kind of reply is emitted once and jumped to; the verifier must still accept many callers
        var rules = Enumerable.Range(0, 48).Select(i => new Rule(
            i % 3 == 0 ? new RejectVerdict(RejectType.TcpReset) : new RejectVerdict(RejectType.IcmpUnreachable, (byte)(i % 16)),
            i % 3 == 0 ? [Matcher.Eq(Fields.Ip.Saddr, V4($"198.51.100.{i + 1}")), Tcp] : [Matcher.Eq(Fields.Ip.Saddr, V4($"198.51.100.{i + 1}"))])).ToArray();
        using var p = Xdp1(rules);
        byte[] udp = PacketBuilder.Ether().Ipv4("198.51.100.47", "198.51.100.2").Udp(5353, 53, payload: 31);
        Assert.Equal(Convert.ToHexString(Unreachable(udp, 46 % 16, udp.Length - 14)), Convert.ToHexString(Answer(p, udp).Frame));
    }

    [Fact]
    public void TheQuoteStopsAt536Bytes()
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpUnreachable, 10), Ipv4Only);
        byte[] big = PacketBuilder.Ether(vlanId: 5).Ipv4("198.51.100.1", "198.51.100.2").Udp(1, 2, payload: 1400);
        var (v, reply) = Answer(p, big);
        Assert.Equal(XdpTx, v);
        Assert.Equal(Convert.ToHexString(Unreachable(big, 10, 536)), Convert.ToHexString(reply));
    }

    [Fact]
    public void UdpWithoutChecksumIsAnsweredWhateverItCarries()
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpUnreachable, 3), Ipv4Only);
        byte[] udp = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Udp(5353, 53, payload: 20);
        udp[14 + 20 + 6] = 0;
        udp[14 + 20 + 7] = 0;
        udp[^1] ^= 0x55;
        Assert.Equal(XdpTx, Answer(p, udp).Verdict);
    }

    public static TheoryData<string, byte[]> NoReply()
    {
        byte[] badTcp = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(1, 22).Payload(10);
        badTcp[^1] ^= 1;
        byte[] broadcast = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(1, 22).Payload(10);
        broadcast.AsSpan(0, 6).Fill(0xff);
        byte[] multicast = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(1, 22).Payload(10);
        multicast[0] = 0x01;
        return new TheoryData<string, byte[]>
        {
            { "rst", PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(1, 22, flags: 0x04).Payload(10) },
            { "bad checksum", badTcp },
            { "broadcast", broadcast },
            { "multicast", multicast },
            { "non-first fragment", PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2", fragment: 0x0010).Tcp(1, 22).Payload(10) },
            { "not tcp", PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Udp(1, 22, payload: 20) },
            // a bare segment padded to the 60-byte minimum: nf_ip_checksum counts the padding in the pseudo-header's length
            { "padded", PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(1, 22) },
        };
    }

    [Theory]
    [MemberData(nameof(NoReply))]
    public void NoResetWhereTheKernelSendsNone(string what, byte[] frame)
    {
        using var p = Reject(new RejectVerdict(RejectType.TcpReset), Ipv4Only);
        Assert.True(XdpDrop == p.Run(frame), what);
    }

    [Fact]
    public void NoUnreachableAboutAnUnreachableOrABadChecksum()
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpUnreachable, 3), Ipv4Only);
        byte[] unreach = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Icmp(3, 3).Payload(28);
        Assert.Equal(XdpDrop, p.Run(unreach));
        byte[] badUdp = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Udp(1, 2, payload: 20);
        badUdp[^1] ^= 1;
        Assert.Equal(XdpDrop, p.Run(badUdp));
        byte[] badIcmp = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Icmp(8).Payload(20);
        badIcmp[^1] ^= 1;
        Assert.Equal(XdpDrop, p.Run(badIcmp));
        // the Ethernet padding behind tot_len is trimmed before the checksum is verified
        byte[] padded = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Icmp(8).Payload(4);
        padded[^1] ^= 1;
        Assert.Equal(XdpTx, p.Run(padded));
        byte[] ip6 = PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2);
        Assert.Equal(XdpPass, p.Run(ip6)); // the rule's `meta protocol ip` does not match
    }

    /// <summary>
    /// nf_reject_verify_csum skips GRE, AH, ESP, SCTP and UDP-Lite; every other protocol's bytes must sum
    /// right (without the pseudo-header). DCCP is among them: on this kernel (6.18, the oracle) a DCCP
    /// datagram with a wrong sum gets no unreachable, one whose bytes sum right does.
    /// </summary>
    [Fact]
    public void UnreachableChecksOnlyTheProtocolsTheKernelChecks()
    {
        using var p = Reject(new RejectVerdict(RejectType.IcmpUnreachable, 3), Ipv4Only);
        static byte[] Garbage(byte proto, bool sumRight)
        {
            // an ICMP-style header: its checksum covers the bytes from the transport header without a pseudo-header
            byte[] f = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Icmp(8, proto: proto).Payload(20);
            if (!sumRight) f[^1] ^= 1;
            return f;
        }
        Assert.Equal(XdpDrop, p.Run(Garbage(33, sumRight: false)));
        Assert.Equal(XdpTx, p.Run(Garbage(33, sumRight: true)));
        Assert.Equal(XdpTx, p.Run(Garbage(47, sumRight: false)));
        Assert.Equal(XdpTx, p.Run(Garbage(132, sumRight: false)));
    }

    [Theory]
    [MemberData(nameof(NotNetdevIngress))]
    public void RejectRunsInBpfOnlyAtNetdevIngress(Hook hook)
    {
        var rs = Ruleset(hook, Verdict.Accept, [new Rule(new RejectVerdict(RejectType.TcpReset), Ipv4Only, Tcp) { Origin = "inet t c handle 8" }]);
        var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.Equal("inet t c handle 8: reject with tcp reset runs in BPF only in netdev ingress chains (XDP)", e.Message);
    }

    public static TheoryData<Hook> NotNetdevIngress() => [TcOut, NfIn4, new XdpIngress("lo", IpOnly: true)];
}
