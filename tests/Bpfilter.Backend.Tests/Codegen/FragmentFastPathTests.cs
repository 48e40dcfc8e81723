using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Transport fields of non-first fragments, as nf_tables reads them: a load nft_payload_fast_eval
/// runs (1, 2 or 4 bytes aligned: <see cref="PayloadField.FastLoad"/>) reads at thoff whatever the
/// fragment offset, within the skb's linear area; other loads (nft_payload_eval) never match there.
/// thoff is behind the IPv4 header, and 0 (the start of skb->data) for an IPv6 later fragment:
/// the network header at XDP, tc ingress and netfilter hooks, the Ethernet header at tc egress.
/// </summary>
public class FragmentFastPathTests
{
    static readonly PayloadField Sport = Fields.Tcp.Sport with { FastLoad = new PayloadLoad(0, 2) };
    static readonly PayloadField Dport = Fields.Tcp.Dport with { FastLoad = new PayloadLoad(2, 2) };

    /// <summary>A later IPv4 fragment whose data starts with what looks like a TCP header (dport 22).</summary>
    static readonly byte[] Frag4 = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2", fragment: 185).Tcp(1, 22);
    /// <summary>A later IPv6 fragment: the kernel reads its "transport" fields from the start of skb->data.</summary>
    static readonly byte[] Frag6 = PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2", (44, 100)).Tcp(1, 22);
    /// <summary>The first two bytes of the IPv6 header (version 6, traffic class 0) and of the destination MAC.</summary>
    const ushort Ipv6Start = 0x6000, MacStart = 0x0200;

    [Fact]
    public void Ipv4LaterFragmentIsReadBehindTheHeader()
    {
        using (var p = Xdp1(Drop(Matcher.Eq(Dport, U16(22)))))
            Assert.Equal(XdpDrop, p.Run(Frag4));
        using (var p = Xdp1(Drop(Matcher.Eq(Fields.Tcp.Dport, U16(22))))) // the slow path's load
            Assert.Equal(XdpPass, p.Run(Frag4));
        using (var p = Load(NfIn4, Verdict.Accept, [Drop(Matcher.Eq(Dport, U16(22)))]))
            Assert.Equal(NfDrop, p.Run(Frag4));
        using (var p = Load(TcOut, Verdict.Accept, [Drop(Matcher.Eq(Dport, U16(22)))]))
            Assert.Equal(TcShot, p.Run(Frag4));
    }

    [Fact]
    public void Ipv6LaterFragmentIsReadFromTheStartOfSkbData()
    {
        using (var p = Xdp1(Drop(Matcher.Eq(Sport, U16(Ipv6Start)))))
        {
            Assert.Equal(XdpDrop, p.Run(Frag6));
            Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2", (44, 0)).Tcp(1, 22))); // first fragment: sport 1
        }
        using (var p = Xdp1(Drop(Matcher.Eq(Dport, U16(22)))))
            Assert.Equal(XdpPass, p.Run(Frag6));
        using (var p = Load(TcIn, Verdict.Accept, [Drop(Matcher.Eq(Sport, U16(Ipv6Start)))]))
            Assert.Equal(TcShot, p.Run(Frag6));
        using (var p = Load(TcOut, Verdict.Accept, [Drop(Matcher.Eq(Sport, U16(MacStart)))]))
            Assert.Equal(TcShot, p.Run(Frag6));
        var nf6 = new NetfilterHook(NfFamily.Ipv6, NfHookPoint.Input, 0);
        using (var p = Load(nf6, Verdict.Accept, [Drop(Matcher.Eq(Sport, U16(Ipv6Start)))], ipv6: true))
            Assert.Equal(NfDrop, p.Run(Frag6));
    }

    [Fact]
    public void OnlyTheLinearAreaIsRead()
    {
        // 40 bytes of IPv4 options, a 20-byte "TCP header" and nothing after it: @th,160,16 is past the end
        var past = new PayloadField(HeaderProtocol.Tcp, PayloadBase.Transport, 160, 16) { FastLoad = new PayloadLoad(20, 2) };
        var frag = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2", options: new byte[40], fragment: 185).Tcp(1, 22);
        using (var p = Xdp1(Drop(Matcher.Ne(past, U16(0)))))
            Assert.Equal(XdpPass, p.Run(frag));
        using (var p = Load(NfIn4, Verdict.Accept, [Drop(Matcher.Ne(past, U16(0)))]))
            Assert.Equal(NfAccept, p.Run(frag));
        using (var p = Load(NfIn4, Verdict.Accept, [Drop(Matcher.Ne(Dport, U16(0)))]))
            Assert.Equal(NfDrop, p.Run(frag));
    }

    [Fact]
    public void ASlowPathFieldInTheRuleStillNeedsATransportHeader()
    {
        using var p = Xdp1(Drop(Matcher.Eq(Dport, U16(22)), Matcher.Eq(Fields.Tcp.Sport, U16(1))));
        Assert.Equal(XdpPass, p.Run(Frag4));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(1, 22)));
    }
}
