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
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether(vlanId: 20).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether(vlanId: 20).Ipv4("198.19.0.3", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether(vlanId: 21).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9))); // untagged: no vlan id
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether(vlanId: 20).Ipv6("2001:db8:ff::1", "2001:db8:1::1").Udp(1, 9))); // vlan type ip6
    }

    [Fact]
    public void VlanFieldsNeedAn8021QTag()
    {
        // an 802.1ad (0x88a8) outer tag fails nft's `ether type 8021q` dependency of `vlan id`
        using var p = Xdp1(Drop(Matcher.Eq(Fields.Vlan.Id, Value.FromUInt(20, 12))));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether(vlanId: 20).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether(vlanId: 20, tpid: 0x88a8).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
    }

    [Fact]
    public void IpBehindAn8021adTagIsStillTheNetworkHeader()
    {
        // skb_vlan_untag also removes an 802.1ad tag: meta protocol and the network header are the inner ones
        using var p = Xdp1(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.19.0.2"))));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether(vlanId: 20, tpid: 0x88a8).Ipv4("198.19.0.2", "198.18.1.1").Udp(1, 9)));
    }
}

/// <summary>
/// meta pkttype at XDP, computed as eth_type_trans does before the ingress hook, against the device's
/// current address: BPF_PROG_TEST_RUN with the ingress device of a veth whose address the test sets.
/// </summary>
public class XdpPktTypeTests
{
    static readonly byte[] DevMac = [0x02, 0, 0, 0, 0x0a, 0x01];

    static byte[] Frame(byte[] dst)
    {
        byte[] f = PacketBuilder.Ether().Ipv4("198.19.0.1", "198.18.1.1").Udp(1, 68);
        dst.CopyTo(f, 0);
        return f;
    }

    static byte[] Ctx(int ifindex, int size)
    {
        var c = new byte[24]; // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
        BitConverter.TryWriteBytes(c.AsSpan(4), size);
        BitConverter.TryWriteBytes(c.AsSpan(12), ifindex);
        return c;
    }

    static void Sh(string cmd)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sh", ["-c", cmd]) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{cmd}: {p.StandardError.ReadToEnd()}");
    }

    [Theory]
    [InlineData(0, "02:00:00:00:0a:01")]                      // host: the device's address
    [InlineData(1, "ff:ff:ff:ff:ff:ff")]                      // broadcast
    [InlineData(2, "01:00:5e:00:00:fb")]                      // multicast (group bit)
    [InlineData(2, "ff:ff:ff:ff:ff:fe")]                      // group bit, not all ones: multicast
    [InlineData(3, "02:00:00:00:09:09")]                      // otherhost
    public void PktTypeFromTheDestinationMac(int type, string dst)
    {
        using var veth = new VethPair();
        Sh($"ip -n {veth.Server} link set {VethPair.ServerDevice} address {string.Join(":", DevMac.Select(b => b.ToString("x2")))}");
        var mac = dst.Split(':').Select(h => Convert.ToByte(h, 16)).ToArray();
        var verdicts = VethPair.InNamespace(veth.Server, () =>
        {
            int ifindex = (int)System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .Single(i => i.Name == VethPair.ServerDevice).GetIPProperties().GetIPv4Properties().Index;
            var results = new List<uint>();
            for (int t = 0; t < 4; t++)
            {
                using var p = Harness.Xdp1(Harness.Drop(Matcher.Eq(Fields.PktType, Value.FromUInt((ulong)t, 8))));
                var f = Frame(mac);
                results.Add(p.TestRun(f, ctx: Ctx(ifindex, f.Length)).ReturnValue);
            }
            return results;
        });
        for (int t = 0; t < 4; t++) Assert.Equal(t == type ? XdpDrop : XdpPass, verdicts[t]);
    }

    [Fact]
    public void DeviceAddressIsReadAtRunTime()
    {
        using var veth = new VethPair();
        Sh($"ip -n {veth.Server} link set {VethPair.ServerDevice} address 02:00:00:00:0a:01");
        var (before, after) = VethPair.InNamespace(veth.Server, () =>
        {
            int ifindex = (int)System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .Single(i => i.Name == VethPair.ServerDevice).GetIPProperties().GetIPv4Properties().Index;
            using var p = Harness.Xdp1(Harness.Drop(Matcher.Eq(Fields.PktType, Value.FromUInt(0, 8))));
            var f = Frame([0x02, 0, 0, 0, 0x0a, 0x02]);
            var b = p.TestRun(f, ctx: Ctx(ifindex, f.Length)).ReturnValue;
            Sh($"ip -n {veth.Server} link set {VethPair.ServerDevice} address 02:00:00:00:0a:02");
            return (b, p.TestRun(f, ctx: Ctx(ifindex, f.Length)).ReturnValue);
        });
        Assert.Equal(XdpPass, before); // otherhost
        Assert.Equal(XdpDrop, after);  // the same loaded program now sees host
    }
}
