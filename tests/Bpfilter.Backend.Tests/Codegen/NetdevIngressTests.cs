using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// netdev ingress (XDP) semantics of nf_tables that the packet corpus (integration/corpus/packets/netdev-ingress-*)
/// checks against the kernel: the receive path untags one 802.1Q or 802.1ad tag before the ingress hook
/// (skb_vlan_untag), so the network header follows the tag; nft's vlan matches depend on `ether type 8021q`.
/// </summary>
public class NetdevIngressTests
{
    [Fact]
    public void VlanIdAndIpSaddrBehindTheTag()
    {
        // nft: vlan id 20 ip saddr 198.19.0.2 drop (its `vlan type ip` dependency is implied by ip saddr)
        using var p = Xdp1(Drop(Matcher.Eq(Fields.Vlan.Id, Value.FromUInt(20, 12)), Matcher.Eq(Fields.Ip.Saddr, V4("198.19.0.2"))));
        Assert.Equal(XdpDrop, p.Run(Packets.Ether(vlanId: 20).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(Packets.Ether(vlanId: 20).Ipv4("198.19.0.3", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(Packets.Ether(vlanId: 21).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(Packets.Ether().Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9))); // untagged: no vlan id
        Assert.Equal(XdpPass, p.Run(Packets.Ether(vlanId: 20).Ipv6("2001:db8:ff::1", "2001:db8:1::1").Udp(1, 9))); // vlan type ip6
    }

    [Fact]
    public void VlanFieldsNeedAn8021QTag()
    {
        // an 802.1ad (0x88a8) outer tag fails nft's `ether type 8021q` dependency of `vlan id`
        using var p = Xdp1(Drop(Matcher.Eq(Fields.Vlan.Id, Value.FromUInt(20, 12))));
        Assert.Equal(XdpDrop, p.Run(Packets.Ether(vlanId: 20).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(Packets.Ether(vlanId: 20, tpid: 0x88a8).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
    }

    [Fact]
    public void IpBehindAn8021adTagIsStillTheNetworkHeader()
    {
        // skb_vlan_untag also removes an 802.1ad tag: meta protocol and the network header are the inner ones
        using var p = Xdp1(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.19.0.2"))));
        Assert.Equal(XdpDrop, p.Run(Packets.Ether(vlanId: 20, tpid: 0x88a8).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
    }
}
