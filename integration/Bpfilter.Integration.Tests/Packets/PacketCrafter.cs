using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// Builds the frames of a packet line: Ethernet (+ 802.1Q tags), IPv4 (options, fragments) or
/// IPv6 (hop-by-hop, routing, destination options, fragment headers), then TCP, UDP, ICMP or ICMPv6
/// with correct checksums and a payload that starts with a 16-byte marker. Everything is derived
/// from the case and packet names, so both sides of a comparison send byte-identical frames. The
/// layers' bytes come from the shared <see cref="PacketLayers"/>; this maps the line's fields onto them.
/// </summary>
public static class PacketCrafter
{
    public const int MarkerLength = 16;
    static readonly byte[] MarkerPrefix = "BFNT"u8.ToArray();

    public static CraftedPacket Craft(string caseName, PacketSpec spec, byte[] defaultSrcMac, byte[] defaultDstMac)
    {
        var seed = SHA256.HashData(Encoding.UTF8.GetBytes($"{caseName}/{spec.Name}"));
        var marker = new byte[MarkerLength];
        MarkerPrefix.CopyTo(marker, 0);
        seed.AsSpan(0, MarkerLength - MarkerPrefix.Length).CopyTo(marker.AsSpan(MarkerPrefix.Length));

        var layers = spec.Layers;
        int i = 0;
        Layer? eth = null;
        var vlans = new List<Layer>();
        if (i < layers.Count && layers[i].Kind == "eth") eth = layers[i++];
        while (i < layers.Count && layers[i].Kind == "vlan") vlans.Add(layers[i++]);
        if (i < layers.Count && layers[i].Kind == "arp")
        {
            if (spec.From == Origin.Fw) throw Fail(spec, "ARP frames come from peer or back");
            if (i + 1 < layers.Count) throw Fail(spec, "nothing follows an arp layer");
            return Arp(spec, eth, vlans, layers[i], defaultSrcMac, defaultDstMac);
        }
        if (i >= layers.Count || layers[i].Kind is not ("ip4" or "ip6"))
            throw Fail(spec, "expected [eth] [vlan ...] then arp, ip4 or ip6");
        var ip = layers[i++];
        var exts = new List<Layer>();
        while (i < layers.Count && layers[i].Kind is "hbh" or "rt" or "dstopt" or "frag6") exts.Add(layers[i++]);
        if (ip.Kind == "ip4" && exts.Count > 0) throw Fail(spec, "IPv6 extension headers after ip4");
        Layer? l4 = null;
        if (i < layers.Count && layers[i].Kind is "tcp" or "udp" or "icmp" or "icmp6") l4 = layers[i++];
        Layer? data = null;
        if (i < layers.Count && layers[i].Kind == "data") data = layers[i++];
        if (i < layers.Count) throw Fail(spec, $"unexpected `{layers[i].Source}` (order: eth, vlan, ip, extension headers, l4, data)");
        if (spec.From == Origin.Fw && (eth != null || vlans.Count > 0))
            throw Fail(spec, "packets from fw are sent by its IP stack: no eth or vlan layer");

        var payload = Payload(marker, seed, (int)(data?.Number("len", 32, 1400) ?? 32), spec);
        List<byte[]> packets;
        IPAddress destination;
        try
        {
            (packets, destination) = ip.Kind == "ip4"
                ? BuildIPv4(ip, l4, payload, seed)
                : BuildIPv6(ip, exts, l4, payload, seed);
        }
        catch (FormatException e)
        {
            throw Fail(spec, e.Message);
        }

        var fingerprints = packets.Select(p => PacketLayers.L3Payload(p, 0) ?? throw Fail(spec, "unparsable IP packet")).ToList();
        var frames = spec.From == Origin.Fw
            ? packets
            : packets.Select(p => Ethernet(eth, vlans, ip.Kind == "ip4" ? 0x0800 : 0x86dd, p, defaultSrcMac, defaultDstMac)).ToList();
        // Where it arrives, the packet carries the `arrives` fields (NAT): the same packet line with
        // those fields replaced, crafted from the same seed, so marker and payload are the same.
        var arriving = packets;
        if (spec.ArrivesAs.Count > 0)
        {
            var changed = layers.Where(l => l.Kind is not ("eth" or "vlan"))
                .Select(l => spec.ArrivesAs.FirstOrDefault(c => c.Kind == l.Kind) is { } c ? l.With(c) : l).ToList();
            var translated = Craft(caseName, spec with { From = Origin.Fw, Layers = changed, ArrivesAs = [] }, [], []);
            arriving = translated.Frames.ToList();
        }
        var keys = arriving.Select(p => IpKey(p) ?? throw Fail(spec, "unparsable IP packet")).ToList();
        return new CraftedPacket(spec, frames, fingerprints, marker, destination) { ArrivalKeys = keys };
    }

    const int EtherTypeArp = 0x0806;

    /// <summary>
    /// An ARP frame for IPv4 over Ethernet: `arp op=1|2 sha= spa= tha= tpa=` (op 1, a request, by
    /// default; sha the sender's MAC; tha zero). A request goes to the broadcast address unless the
    /// eth layer says otherwise. Its arrival key is the ARP body as sent (a bridged copy).
    /// </summary>
    static CraftedPacket Arp(PacketSpec spec, Layer? eth, List<Layer> vlans, Layer arp, byte[] srcMac, byte[] dstMac)
    {
        var body = new byte[28];
        try
        {
            var op = (int)arp.Number("op", 1, 65535);
            BinaryPrimitives.WriteUInt16BigEndian(body, 1);          // Ethernet
            BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(2), 0x0800);
            body[4] = 6;
            body[5] = 4;
            BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(6), (ushort)op);
            arp.Mac("sha", eth?.Mac("src", srcMac) ?? srcMac).CopyTo(body, 8);
            arp.Address("spa", AddressFamily.InterNetwork).GetAddressBytes().CopyTo(body, 14);
            arp.Mac("tha", new byte[6]).CopyTo(body, 18);
            arp.Address("tpa", AddressFamily.InterNetwork).GetAddressBytes().CopyTo(body, 24);
            var defaultDst = op == 1 ? [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : dstMac;
            var frame = Ethernet(eth, vlans, EtherTypeArp, body, srcMac, defaultDst);
            return new CraftedPacket(spec, [frame], [body], body, new IPAddress(body.AsSpan(24, 4)))
            {
                ArrivalKeys = [ArpKey(body)],
            };
        }
        catch (FormatException e)
        {
            throw Fail(spec, e.Message);
        }
    }

    static string ArpKey(ReadOnlySpan<byte> body) => "arp " + Convert.ToHexString(body[..28]);

    /// <summary>The key of the reply a host with <paramref name="mac"/> sends to this ARP request.</summary>
    public static string ArpReplyKey(byte[] request, byte[] mac)
    {
        var r = (byte[])request.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(6), 2);
        mac.CopyTo(r, 8);
        request.AsSpan(24, 4).CopyTo(r.AsSpan(14));
        request.AsSpan(8, 6).CopyTo(r.AsSpan(18));
        request.AsSpan(14, 4).CopyTo(r.AsSpan(24));
        return ArpKey(r);
    }

    /// <summary>Source and destination address, then everything behind the fixed IP header; null if not a whole IP packet.</summary>
    public static string? IpKey(ReadOnlySpan<byte> p)
    {
        var payload = PacketLayers.L3Payload(p, 0);
        if (payload == null) return null;
        var addresses = p[0] >> 4 == 4 ? p[12..20] : p[8..40];
        return Convert.ToHexString(addresses) + " " + Convert.ToHexString(payload);
    }

    /// <summary>The arrival key of an Ethernet frame (802.1Q/802.1ad tags skipped): IP or ARP; null for anything else.</summary>
    public static string? FrameKey(ReadOnlySpan<byte> frame)
    {
        int off = 12;
        while (off + 2 <= frame.Length && BinaryPrimitives.ReadUInt16BigEndian(frame[off..]) is 0x8100 or 0x88a8) off += 4;
        if (off + 2 > frame.Length) return null;
        var type = BinaryPrimitives.ReadUInt16BigEndian(frame[off..]);
        if (type == EtherTypeArp) return frame.Length >= off + 2 + 28 ? ArpKey(frame[(off + 2)..]) : null;
        return type is 0x0800 or 0x86dd ? IpKey(frame[(off + 2)..]) : null;
    }

    static FormatException Fail(PacketSpec spec, string why) => new($"packet {spec.Name} (line {spec.Line}): {why}");

    /// <summary>Marker first, then bytes that are unique to this packet so every fragment is unique too.</summary>
    static byte[] Payload(byte[] marker, byte[] seed, int length, PacketSpec spec)
    {
        if (length < MarkerLength) throw Fail(spec, $"data len must be at least {MarkerLength} (the marker)");
        var p = new byte[length];
        marker.CopyTo(p, 0);
        var block = seed;
        for (int off = MarkerLength; off < length; off += block.Length)
        {
            block = SHA256.HashData(block);
            block.AsSpan(0, Math.Min(block.Length, length - off)).CopyTo(p.AsSpan(off));
        }
        return p;
    }

    static byte[] Ethernet(Layer? eth, List<Layer> vlans, int etherType, byte[] packet, byte[] srcMac, byte[] dstMac) =>
        PacketLayers.Ethernet(eth?.Mac("dst", dstMac) ?? dstMac, eth?.Mac("src", srcMac) ?? srcMac,
            vlans.Select(v => new VlanTag((ushort)v.Number("id", 0, 4095), (ushort)v.Number("tpid", 0x8100, 0xffff),
                (byte)v.Number("pcp", 0, 7), (byte)v.Number("dei", 0, 1))).ToList(),
            etherType, packet);

    /// <summary>The upper-layer header and payload, checksummed for the given addresses.</summary>
    static (int Proto, byte[] Bytes) Transport(Layer? l4, byte[] payload, IPAddress src, IPAddress dst, bool v6)
    {
        if (l4 == null) return (PacketLayers.ProtoNone, payload);
        ushort Port(string key, long fallback) => (ushort)l4.Number(key, fallback, 65535);
        switch (l4.Kind)
        {
            case "udp":
                return (PacketLayers.ProtoUdp, PacketLayers.Udp(src, dst, Port("sport", 40000), Port("dport", 9), payload));
            case "tcp":
                return (PacketLayers.ProtoTcp, PacketLayers.Tcp(src, dst, Port("sport", 40000), Port("dport", 9),
                    PacketLayers.TcpFlags(l4.Text("flags") ?? "syn"), payload,
                    seq: (uint)l4.Number("seq", 1000, uint.MaxValue), ack: (uint)l4.Number("ack", 0, uint.MaxValue),
                    window: (ushort)l4.Number("win", 8192, 65535)));
            case "icmp" or "icmp6":
                if ((l4.Kind == "icmp6") != v6) throw new FormatException($"`{l4.Kind}` does not go in {(v6 ? "IPv6" : "IPv4")}");
                return (v6 ? PacketLayers.ProtoIcmpV6 : PacketLayers.ProtoIcmp, PacketLayers.Icmp(src, dst, v6,
                    (byte)l4.Number("type", v6 ? 128 : 8, 255), (byte)l4.Number("code", 0, 255),
                    (ushort)l4.Number("id", 0x4242, 65535), (ushort)l4.Number("seq", 1, 65535), payload));
            default:
                throw new FormatException($"`{l4.Kind}` is not a transport layer");
        }
    }

    static (List<byte[]>, IPAddress) BuildIPv4(Layer ip, Layer? l4, byte[] payload, byte[] seed)
    {
        var src = ip.Address("src", AddressFamily.InterNetwork);
        var dst = ip.Address("dst", AddressFamily.InterNetwork);
        var (proto, body) = Transport(l4, payload, src, dst, v6: false);
        proto = (int)ip.Number("proto", proto, 255);
        var options = ip.Text("opts") is { } opts ? PacketLayers.Ipv4Options(opts) : [];
        // An id of its own per packet, so fragments never join another packet's reassembly queue.
        var id = (ushort)ip.Number("id", (BinaryPrimitives.ReadUInt16BigEndian(seed.AsSpan(20)) | 1), 65535);
        var tos = (byte)ip.Number("tos", 0, 255);
        var df = ip.Number("df", 0, 1) == 1;
        var ttl = (byte)ip.Number("ttl", 64, 255);
        var packets = ip.Has("frags")
            ? PacketLayers.Ipv4Fragments(src, dst, proto, body, (int)ip.Number("frags", 0, 65535), tos, id, df, ttl, options)
            : [PacketLayers.Ipv4(src, dst, proto, body, tos, id, df, moreFragments: false, fragmentOffset: 0, ttl, options)];
        return (Pick(ip, packets), dst);
    }

    /// <summary>pick=0,2 sends only those fragments (by index), in the order given.</summary>
    static List<byte[]> Pick(Layer ip, List<byte[]> packets)
    {
        var pick = ip.Text("pick");
        if (pick == null) return packets;
        var chosen = new List<byte[]>();
        foreach (var s in pick.Split(','))
        {
            if (!int.TryParse(s, out var k) || k < 0 || k >= packets.Count)
                throw new FormatException($"pick={pick}: there are {packets.Count} fragments");
            chosen.Add(packets[k]);
        }
        return chosen;
    }

    static (List<byte[]>, IPAddress) BuildIPv6(Layer ip, List<Layer> exts, Layer? l4, byte[] payload, byte[] seed)
    {
        var src = ip.Address("src", AddressFamily.InterNetworkV6);
        var dst = ip.Address("dst", AddressFamily.InterNetworkV6);
        var (l4Proto, body) = Transport(l4, payload, src, dst, v6: true);
        var fragId = BinaryPrimitives.ReadUInt32BigEndian(seed.AsSpan(24));
        var headers = exts.Select(e => ExtensionHeader(e, dst, fragId)).ToList();
        var packets = PacketLayers.Ipv6Packets(src, dst, headers, l4Proto, body,
            ip.Has("frags") ? (int)ip.Number("frags", 0, 65535) : null, fragId,
            (byte)ip.Number("tc", 0, 255), (uint)ip.Number("flow", 0, 0xfffff), (byte)ip.Number("hlim", 64, 255));
        return (Pick(ip, packets), dst);
    }

    static (int Proto, byte[] Bytes) ExtensionHeader(Layer e, IPAddress dst, uint fragId) => e.Kind switch
    {
        "hbh" or "dstopt" => PacketLayers.Ipv6Options(e.Kind == "dstopt", (int)e.Number("len", 0, 8)),
        "rt" => PacketLayers.Ipv6Routing((byte)e.Number("type", 0, 255), (byte)e.Number("segleft", 0, 255), dst),
        // An atomic fragment: offset 0, no more fragments (RFC 6946).
        "frag6" => PacketLayers.Ipv6Fragment(0, more: false, (uint)e.Number("id", fragId, uint.MaxValue)),
        _ => throw new FormatException($"`{e.Kind}` is not an IPv6 extension header"),
    };
}
