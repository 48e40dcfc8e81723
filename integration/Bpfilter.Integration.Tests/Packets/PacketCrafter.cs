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
        if (i >= layers.Count || layers[i].Kind is not ("ip4" or "ip6"))
            throw Fail(spec, "expected [eth] [vlan ...] then ip4 or ip6");
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
        return new CraftedPacket(spec, frames, fingerprints, marker, destination);
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
