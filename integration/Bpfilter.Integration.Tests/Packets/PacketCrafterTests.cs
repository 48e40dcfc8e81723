using System.Buffers.Binary;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>The crafter's bytes, checked by parsing them back (no namespace needed).</summary>
public class PacketCrafterTests
{
    static CraftedPacket Craft(string layers, Origin from = Origin.Peer) =>
        PacketCrafter.Craft("unit", new PacketSpec("p", from, true,
            layers.Split('/').Select(l => Layer.Parse(l.Trim())).ToList(), 1), Topology.PeerMac, Topology.Fw0Mac);

    static int Ethertype(byte[] f, out int l3)
    {
        l3 = 12;
        while (BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(l3)) is 0x8100 or 0x88a8) l3 += 4;
        var t = BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(l3));
        l3 += 2;
        return t;
    }

    [Fact]
    public void Ipv4UdpHasValidChecksumsAndTheMarker()
    {
        var p = Craft("ip4 src=198.19.0.1 dst=198.18.1.1 ttl=9 / udp sport=1000 dport=53 / data len=40");
        var f = Assert.Single(p.Frames);
        Assert.Equal(Topology.Fw0Mac, f[..6]);
        Assert.Equal(Topology.PeerMac, f[6..12]);
        Assert.Equal(0x0800, Ethertype(f, out var l3));
        var ip = f.AsSpan(l3);
        Assert.Equal(0x45, ip[0]);
        Assert.Equal(9, ip[8]);
        Assert.Equal(17, ip[9]);
        Assert.Equal(20 + 8 + 40, BinaryPrimitives.ReadUInt16BigEndian(ip[2..]));
        Assert.Equal(0, Checksum.Compute(ip[..20]));
        var udp = ip[20..];
        Assert.Equal(53, BinaryPrimitives.ReadUInt16BigEndian(udp[2..]));
        // Recomputing over a message that carries its checksum yields 0 (mapped to 0xffff for UDP).
        Assert.Equal(0xffff, Checksum.WithPseudoHeader(System.Net.IPAddress.Parse("198.19.0.1"), System.Net.IPAddress.Parse("198.18.1.1"), 17, udp));
        Assert.True(udp[8..].StartsWith(p.Marker));
        Assert.Equal(udp.ToArray(), p.Fingerprints[0]);
    }

    [Theory]
    [InlineData("tcp dport=80 flags=syn,ack", 6)]
    [InlineData("udp dport=9", 17)]
    [InlineData("icmp6 type=128", 58)]
    public void TransportChecksumsVerify(string l4, int proto)
    {
        var v6 = proto == 58;
        var p = v6
            ? Craft($"ip6 src=2001:db8:ff::1 dst=2001:db8:1::1 / {l4}")
            : Craft($"ip4 src=198.19.0.1 dst=198.18.1.1 / {l4}");
        var f = p.Frames[0];
        Ethertype(f, out var l3);
        var hdr = v6 ? 40 : 20;
        var msg = f.AsSpan(l3 + hdr);
        var src = System.Net.IPAddress.Parse(v6 ? "2001:db8:ff::1" : "198.19.0.1");
        var dst = System.Net.IPAddress.Parse(v6 ? "2001:db8:1::1" : "198.18.1.1");
        // Recomputing over a message that carries its checksum yields 0 (UDP maps 0 to 0xffff).
        var r = Checksum.WithPseudoHeader(src, dst, proto, msg);
        Assert.True(r == 0 || proto == 17 && r == 0xffff, $"checksum does not verify: {r:x4}");
        if (proto == 6) Assert.Equal(0x12, msg[13]);
    }

    [Fact]
    public void Ipv4FragmentsCoverThePayloadWithOffsetsAndMoreFragments()
    {
        var whole = Craft("ip4 src=198.19.0.1 dst=198.18.1.1 / udp dport=9 / data len=100");
        var frags = Craft("ip4 src=198.19.0.1 dst=198.18.1.1 opts=ra,nop,rr frags=32 / udp dport=9 / data len=100");
        Assert.Equal(4, frags.Frames.Count); // 108 bytes of UDP in 32-byte pieces
        var joined = new List<byte>();
        for (int i = 0; i < frags.Frames.Count; i++)
        {
            var ip = frags.Frames[i].AsSpan(14);
            var ihl = (ip[0] & 0xf) * 4;
            Assert.Equal(0, Checksum.Compute(ip[..ihl]));
            var fo = BinaryPrimitives.ReadUInt16BigEndian(ip[6..]);
            Assert.Equal(i * 32 / 8, fo & 0x1fff);
            Assert.Equal(i < 3, (fo & 0x2000) != 0);
            // The first fragment carries all options, later ones only router alert (copied bit).
            Assert.Equal(i == 0 ? 20 + 12 : 20 + 4, ihl);
            joined.AddRange(ip[ihl..].ToArray());
        }
        Assert.Equal(whole.Fingerprints[0], joined.ToArray());
        Assert.Single(frags.Frames.Select(f => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 4))).Distinct());
    }

    [Fact]
    public void Ipv6ExtensionHeadersChainAndFragmentAfterTheUnfragmentablePart()
    {
        var p = Craft("ip6 src=2001:db8:ff::1 dst=2001:db8:1::1 frags=48 / hbh / rt / dstopt len=1 / udp dport=9 / data len=100");
        Assert.Equal(3, p.Frames.Count); // dstopt 16 + udp 108 = 124 bytes in 48-byte pieces
        foreach (var (f, i) in p.Frames.Select((f, i) => (f, i)))
        {
            var ip = f.AsSpan(14);
            Assert.Equal(0, ip[6]);            // hop-by-hop first
            Assert.Equal(43, ip[40]);          // then routing
            Assert.Equal(44, ip[48]);          // then the fragment header
            var fh = ip[(48 + 24)..];
            Assert.Equal(60, fh[0]);           // the fragmentable part starts with destination options
            var off = BinaryPrimitives.ReadUInt16BigEndian(fh[2..]);
            Assert.Equal(i * 48, off & 0xfff8);
            Assert.Equal(i < 2, (off & 1) != 0);
            Assert.Equal(ip.Length - 40, BinaryPrimitives.ReadUInt16BigEndian(ip[4..]));
        }
    }

    [Fact]
    public void VlanTagsCarryIdPriorityAndDei()
    {
        var p = Craft("vlan id=10 pcp=5 dei=1 / vlan id=20 tpid=0x88a8 / ip4 src=198.19.0.1 dst=198.18.1.1 / icmp type=8");
        var f = p.Frames[0];
        Assert.Equal(0x8100, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)));
        Assert.Equal(5 << 13 | 1 << 12 | 10, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14)));
        Assert.Equal(0x88a8, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(16)));
        Assert.Equal(20, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(18)));
        Assert.Equal(0x0800, Ethertype(f, out _));
        Assert.Equal(p.Fingerprints[0], PacketLayers.FrameL3Payload(f));
    }

    [Fact]
    public void SameNamesGiveSameBytesAndDifferentNamesDifferentMarkers()
    {
        var a = Craft("ip4 src=198.19.0.1 dst=198.18.1.1 / udp dport=9");
        var b = Craft("ip4 src=198.19.0.1 dst=198.18.1.1 / udp dport=9");
        Assert.Equal(a.Frames[0], b.Frames[0]);
        var c = PacketCrafter.Craft("other", a.Spec, Topology.PeerMac, Topology.Fw0Mac);
        Assert.NotEqual(a.Marker, c.Marker);
    }

    [Theory]
    [InlineData("ip4 src=198.19.0.1 dst=198.18.1.1 / icmp6 type=128")]
    [InlineData("ip4 src=198.19.0.1 dst=198.18.1.1 frags=30 / udp")]
    [InlineData("udp dport=9")]
    [InlineData("ip4 src=198.19.0.1 dst=198.18.1.1 / hbh / udp")]
    [InlineData("ip4 src=198.19.0.1 dst=198.18.1.1 / udp / data len=8")]
    public void MalformedSpecsAreRefused(string layers) =>
        Assert.Throws<FormatException>(() => Craft(layers));

    [Fact]
    public void UnknownLayersAndFieldsAreRefused()
    {
        Assert.Throws<FormatException>(() => Layer.Parse("sctp dport=9"));
        Assert.Throws<FormatException>(() => Layer.Parse("udp port=9"));
        Assert.Throws<FormatException>(() => Craft("ip4 src=198.19.0.1 dst=198.18.1.1 / udp dport=70000"));
        Assert.Throws<FormatException>(() => Craft("eth / ip4 src=198.18.1.1 dst=198.18.1.2 / udp", Origin.Fw));
    }
}

/// <summary>ARP frames and arrival keys (what the receiving link must show after NAT).</summary>
public class ArrivalKeyTests
{
    static PacketSpec Spec(string layers, string? arrives = null) =>
        new("p", Origin.Peer, true, layers.Split('/').Select(l => Layer.Parse(l.Trim())).ToList(), 1)
        {
            ArrivesAt = arrives == null ? null : Observation.Back,
            ArrivesAs = arrives?.Split('/').Select(l => Layer.Parse(l.Trim())).ToList() ?? [],
        };

    [Fact]
    public void ArpRequestIsBroadcastAndItsReplyKeySwapsTheEnds()
    {
        var p = PacketCrafter.Craft("unit", Spec("arp spa=198.18.1.2 tpa=198.18.1.1"), Topology.PeerMac, Topology.Fw0Mac);
        var f = Assert.Single(p.Frames);
        Assert.Equal(42, f.Length);
        Assert.Equal(new byte[] { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, f[..6]);
        Assert.Equal(0x0806, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(20)));
        Assert.Equal(Topology.PeerMac, f[22..28]);
        Assert.Equal(PacketCrafter.FrameKey(f), Assert.Single(p.ArrivalKeys));

        // The reply fw sends: op 2, fw0's MAC and the asked address as sender, the requester as target.
        var reply = new byte[42];
        Topology.PeerMac.CopyTo(reply, 0);
        Topology.Fw0Mac.CopyTo(reply, 6);
        f.AsSpan(12, 30).CopyTo(reply.AsSpan(12));
        BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(20), 2);
        Topology.Fw0Mac.CopyTo(reply, 22);
        f.AsSpan(38, 4).CopyTo(reply.AsSpan(28));
        f.AsSpan(22, 6).CopyTo(reply.AsSpan(32));
        f.AsSpan(28, 4).CopyTo(reply.AsSpan(38));
        Assert.Equal(PacketCrafter.ArpReplyKey(p.Fingerprints[0], Topology.Fw0Mac), PacketCrafter.FrameKey(reply));
    }

    [Fact]
    public void ArrivalKeyCarriesTheTranslatedHeaderAndTheSamePayload()
    {
        var sent = PacketCrafter.Craft("unit", Spec("ip4 src=198.19.1.10 dst=198.18.2.2 / tcp sport=40001 dport=443"), Topology.PeerMac, Topology.Fw0Mac);
        var natted = PacketCrafter.Craft("unit", Spec("ip4 src=198.19.1.10 dst=198.18.2.2 / tcp sport=40001 dport=443", "ip4 src=198.18.2.1"), Topology.PeerMac, Topology.Fw0Mac);
        Assert.Equal(sent.Frames[0], natted.Frames[0]);
        Assert.Equal(PacketCrafter.FrameKey(sent.Frames[0]), Assert.Single(sent.ArrivalKeys));
        var key = Assert.Single(natted.ArrivalKeys);
        Assert.NotEqual(sent.ArrivalKeys[0], key);
        Assert.StartsWith("C6120201C6120202 ", key); // 198.18.2.1 -> 198.18.2.2
        Assert.Contains(Convert.ToHexString(sent.Marker), key);
    }
}
