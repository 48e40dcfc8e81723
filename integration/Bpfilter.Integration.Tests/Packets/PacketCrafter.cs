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
/// from the case and packet names, so both sides of a comparison send byte-identical frames.
/// </summary>
public static class PacketCrafter
{
    public const int MarkerLength = 16;
    static readonly byte[] MarkerPrefix = "BFNT"u8.ToArray();

    const int ProtoHopByHop = 0, ProtoIcmp = 1, ProtoTcp = 6, ProtoUdp = 17, ProtoRouting = 43, ProtoFragment = 44,
        ProtoIcmpV6 = 58, ProtoNone = 59, ProtoDstOpts = 60;

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

        var fingerprints = packets.Select(p => L3Payload(p, 0) ?? throw Fail(spec, "unparsable IP packet")).ToList();
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
        var payload = L3Payload(p, 0);
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

    static byte[] Ethernet(Layer? eth, List<Layer> vlans, int etherType, byte[] packet, byte[] srcMac, byte[] dstMac)
    {
        var f = new byte[14 + 4 * vlans.Count + packet.Length];
        (eth?.Mac("dst", dstMac) ?? dstMac).CopyTo(f, 0);
        (eth?.Mac("src", srcMac) ?? srcMac).CopyTo(f, 6);
        int off = 12;
        foreach (var v in vlans)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(off), (ushort)v.Number("tpid", 0x8100, 0xffff));
            var tci = (v.Number("pcp", 0, 7) << 13) | (v.Number("dei", 0, 1) << 12) | v.Number("id", 0, 4095);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(off + 2), (ushort)tci);
            off += 4;
        }
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(off), (ushort)etherType);
        packet.CopyTo(f, off + 2);
        return f;
    }

    /// <summary>The upper-layer header and payload, checksummed for the given addresses.</summary>
    static (int Proto, byte[] Bytes) Transport(Layer? l4, byte[] payload, IPAddress src, IPAddress dst, bool v6)
    {
        if (l4 == null) return (ProtoNone, payload);
        byte[] m;
        switch (l4.Kind)
        {
            case "udp":
                m = new byte[8 + payload.Length];
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(0), (ushort)l4.Number("sport", 40000, 65535));
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), (ushort)l4.Number("dport", 9, 65535));
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), (ushort)m.Length);
                payload.CopyTo(m, 8);
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), Checksum.WithPseudoHeader(src, dst, ProtoUdp, m));
                return (ProtoUdp, m);
            case "tcp":
                m = new byte[20 + payload.Length];
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(0), (ushort)l4.Number("sport", 40000, 65535));
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), (ushort)l4.Number("dport", 9, 65535));
                BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), (uint)l4.Number("seq", 1000, uint.MaxValue));
                BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(8), (uint)l4.Number("ack", 0, uint.MaxValue));
                m[12] = 5 << 4;
                m[13] = TcpFlags(l4.Text("flags") ?? "syn");
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(14), (ushort)l4.Number("win", 8192, 65535));
                payload.CopyTo(m, 20);
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(16), Checksum.WithPseudoHeader(src, dst, ProtoTcp, m));
                return (ProtoTcp, m);
            case "icmp" or "icmp6":
                if ((l4.Kind == "icmp6") != v6) throw new FormatException($"`{l4.Kind}` does not go in {(v6 ? "IPv6" : "IPv4")}");
                m = new byte[8 + payload.Length];
                m[0] = (byte)l4.Number("type", v6 ? 128 : 8, 255);
                m[1] = (byte)l4.Number("code", 0, 255);
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), (ushort)l4.Number("id", 0x4242, 65535));
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), (ushort)l4.Number("seq", 1, 65535));
                payload.CopyTo(m, 8);
                var sum = v6 ? Checksum.WithPseudoHeader(src, dst, ProtoIcmpV6, m) : Checksum.Compute(m);
                BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), sum);
                return (v6 ? ProtoIcmpV6 : ProtoIcmp, m);
            default:
                throw new FormatException($"`{l4.Kind}` is not a transport layer");
        }
    }

    static byte TcpFlags(string text)
    {
        byte f = 0;
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
            f |= name switch
            {
                "fin" => 0x01, "syn" => 0x02, "rst" => 0x04, "psh" => 0x08,
                "ack" => 0x10, "urg" => 0x20, "ecn" => 0x40, "cwr" => 0x80, "none" => 0,
                _ => throw new FormatException($"unknown tcp flag `{name}` (fin syn rst psh ack urg ecn cwr none)"),
            };
        return f;
    }

    static (List<byte[]>, IPAddress) BuildIPv4(Layer ip, Layer? l4, byte[] payload, byte[] seed)
    {
        var src = ip.Address("src", AddressFamily.InterNetwork);
        var dst = ip.Address("dst", AddressFamily.InterNetwork);
        var (proto, body) = Transport(l4, payload, src, dst, v6: false);
        proto = (int)ip.Number("proto", proto, 255);
        var options = IPv4Options(ip.Text("opts"));
        // An id of its own per packet, so fragments never join another packet's reassembly queue.
        var id = (ushort)ip.Number("id", (BinaryPrimitives.ReadUInt16BigEndian(seed.AsSpan(20)) | 1), 65535);

        byte[] Header(byte[] opts, int fragOffset, bool more, int dataLength)
        {
            var h = new byte[20 + opts.Length + dataLength];
            h[0] = (byte)(0x40 | (5 + opts.Length / 4));
            h[1] = (byte)ip.Number("tos", 0, 255);
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)h.Length);
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), id);
            var flags = (ip.Number("df", 0, 1) << 14) | (more ? 1L << 13 : 0) | (fragOffset / 8L);
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), (ushort)flags);
            h[8] = (byte)ip.Number("ttl", 64, 255);
            h[9] = (byte)proto;
            src.GetAddressBytes().CopyTo(h, 12);
            dst.GetAddressBytes().CopyTo(h, 16);
            opts.CopyTo(h, 20);
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(10), Checksum.Compute(h.AsSpan(0, 20 + opts.Length)));
            return h;
        }

        var packets = new List<byte[]>();
        foreach (var (offset, length, more) in Fragments(ip, body.Length))
        {
            // Only options with the copied bit go into the fragments after the first (RFC 791).
            var opts = offset == 0 ? options : CopiedOptions(options);
            var h = Header(opts, offset, more, 0);
            var p = new byte[h.Length + length];
            h.CopyTo(p, 0);
            body.AsSpan(offset, length).CopyTo(p.AsSpan(h.Length));
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
            p[10] = p[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, h.Length)));
            packets.Add(p);
        }
        return (Pick(ip, packets), dst);
    }

    /// <summary>(offset, length, more fragments) per fragment: one unfragmented piece unless frags=SIZE.</summary>
    static List<(int Offset, int Length, bool More)> Fragments(Layer ip, int total)
    {
        if (!ip.Has("frags")) return [(0, total, false)];
        var size = (int)ip.Number("frags", 0, 65535);
        if (size == 0 || size % 8 != 0) throw new FormatException($"frags={size}: fragment size must be a positive multiple of 8");
        var list = new List<(int, int, bool)>();
        for (int off = 0; off < total; off += size)
            list.Add((off, Math.Min(size, total - off), off + size < total));
        return list;
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

    /// <summary>opts=nop,ra,rr,ts,eol (padded with EOL to a multiple of 4) or opts=hex:BYTES.</summary>
    static byte[] IPv4Options(string? text)
    {
        if (text == null) return [];
        var b = new List<byte>();
        if (text.StartsWith("hex:")) b.AddRange(Convert.FromHexString(text[4..]));
        else
            foreach (var o in text.Split(','))
                b.AddRange(o switch
                {
                    "eol" => [0],
                    "nop" => [1],
                    "ra" => [0x94, 4, 0, 0],
                    "rr" => [7, 7, 4, 0, 0, 0, 0],
                    "ts" => [0x44, 8, 5, 0, 0, 0, 0, 0],
                    _ => throw new FormatException($"unknown IPv4 option `{o}` (eol nop ra rr ts, or hex:BYTES)"),
                });
        while (b.Count % 4 != 0) b.Add(0);
        if (b.Count > 40) throw new FormatException("IPv4 options longer than 40 bytes");
        return b.ToArray();
    }

    static byte[] CopiedOptions(byte[] options)
    {
        var b = new List<byte>();
        for (int i = 0; i < options.Length;)
        {
            var type = options[i];
            if (type == 0) break;
            if (type == 1) { i++; continue; }
            int len = options[i + 1];
            if ((type & 0x80) != 0) b.AddRange(options.AsSpan(i, len).ToArray());
            i += len;
        }
        while (b.Count % 4 != 0) b.Add(0);
        return b.ToArray();
    }

    static (List<byte[]>, IPAddress) BuildIPv6(Layer ip, List<Layer> exts, Layer? l4, byte[] payload, byte[] seed)
    {
        var src = ip.Address("src", AddressFamily.InterNetworkV6);
        var dst = ip.Address("dst", AddressFamily.InterNetworkV6);
        var (l4Proto, body) = Transport(l4, payload, src, dst, v6: true);
        var fragId = BinaryPrimitives.ReadUInt32BigEndian(seed.AsSpan(24));

        // Extension headers as (protocol number, bytes); byte 0 (next header) is filled in below.
        var headers = exts.Select(e => ExtensionHeader(e, dst, fragId)).ToList();
        // With frags=SIZE the fragment header goes after the last hop-by-hop/routing header (the
        // unfragmentable part); what follows it is split.
        int unfragmentable = exts.FindLastIndex(e => e.Kind is "hbh" or "rt") + 1;

        static byte[] Chain(List<(int Proto, byte[] Bytes)> hs, int last)
        {
            var r = new List<byte>();
            for (int k = 0; k < hs.Count; k++)
            {
                var b = (byte[])hs[k].Bytes.Clone();
                b[0] = (byte)(k + 1 < hs.Count ? hs[k + 1].Proto : last);
                r.AddRange(b);
            }
            return r.ToArray();
        }

        byte[] Packet(int firstProto, byte[] rest)
        {
            var p = new byte[40 + rest.Length];
            var tc = ip.Number("tc", 0, 255);
            var flow = ip.Number("flow", 0, 0xfffff);
            BinaryPrimitives.WriteUInt32BigEndian(p, 6u << 28 | (uint)tc << 20 | (uint)flow);
            BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)rest.Length);
            p[6] = (byte)firstProto;
            p[7] = (byte)ip.Number("hlim", 64, 255);
            src.GetAddressBytes().CopyTo(p, 8);
            dst.GetAddressBytes().CopyTo(p, 24);
            rest.CopyTo(p, 40);
            return p;
        }

        if (!ip.Has("frags"))
        {
            var all = Chain(headers, l4Proto).Concat(body).ToArray();
            return ([Packet(headers.Count > 0 ? headers[0].Proto : l4Proto, all)], dst);
        }

        var front = headers.Take(unfragmentable).ToList();
        var back = headers.Skip(unfragmentable).ToList();
        var fragmentable = Chain(back, l4Proto).Concat(body).ToArray();
        int fragmentableProto = back.Count > 0 ? back[0].Proto : l4Proto;
        var unfrag = Chain(front, ProtoFragment);
        var packets = new List<byte[]>();
        foreach (var (offset, length, more) in Fragments(ip, fragmentable.Length))
        {
            var fh = new byte[8];
            fh[0] = (byte)fragmentableProto;
            BinaryPrimitives.WriteUInt16BigEndian(fh.AsSpan(2), (ushort)(offset | (more ? 1 : 0)));
            BinaryPrimitives.WriteUInt32BigEndian(fh.AsSpan(4), fragId);
            var rest = unfrag.Concat(fh).Concat(fragmentable.AsSpan(offset, length).ToArray()).ToArray();
            packets.Add(Packet(front.Count > 0 ? front[0].Proto : ProtoFragment, rest));
        }
        return (Pick(ip, packets), dst);
    }

    static (int Proto, byte[] Bytes) ExtensionHeader(Layer e, IPAddress dst, uint fragId)
    {
        switch (e.Kind)
        {
            case "hbh" or "dstopt":
            {
                // len = size in 8-byte units beyond the first 8. The first 8 bytes end with a PadN
                // of 4; each further unit is one option of the experimental type 0x1e (RFC 4727),
                // which receivers skip. Linux refuses runs of padding longer than 7 bytes.
                var units = (int)e.Number("len", 0, 8);
                var h = new byte[8 * (units + 1)];
                h[1] = (byte)units;
                h[2] = 1; // PadN
                h[3] = 4;
                for (int u = 1; u <= units; u++)
                {
                    h[8 * u] = 0x1e;
                    h[8 * u + 1] = 6;
                }
                return (e.Kind == "hbh" ? ProtoHopByHop : ProtoDstOpts, h);
            }
            case "rt":
            {
                // One address; with segments left 0 the header is only parsed (RFC 8200 4.4).
                var h = new byte[24];
                h[1] = 2;
                h[2] = (byte)e.Number("type", 0, 255);
                h[3] = (byte)e.Number("segleft", 0, 255);
                dst.GetAddressBytes().CopyTo(h, 8);
                return (ProtoRouting, h);
            }
            case "frag6":
            {
                // An atomic fragment: offset 0, no more fragments (RFC 6946).
                var h = new byte[8];
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4), (uint)e.Number("id", fragId, uint.MaxValue));
                return (ProtoFragment, h);
            }
            default:
                throw new FormatException($"`{e.Kind}` is not an IPv6 extension header");
        }
    }

    /// <summary>
    /// The bytes behind the fixed IPv4 (IHL) or IPv6 (40-byte) header of the IP packet at
    /// <paramref name="offset"/>; null when the bytes are not a whole IP packet.
    /// </summary>
    public static byte[]? L3Payload(ReadOnlySpan<byte> frame, int offset)
    {
        var p = frame[offset..];
        if (p.Length < 1) return null;
        if (p[0] >> 4 == 4 && p.Length >= 20)
        {
            int ihl = (p[0] & 0xf) * 4, total = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
            return ihl >= 20 && total >= ihl && total <= p.Length ? p[ihl..total].ToArray() : null;
        }
        if (p[0] >> 4 == 6 && p.Length >= 40)
        {
            int total = 40 + BinaryPrimitives.ReadUInt16BigEndian(p[4..]);
            return total <= p.Length ? p[40..total].ToArray() : null;
        }
        return null;
    }

    /// <summary>The L3 payload of an Ethernet frame (any 802.1Q/802.1ad tags skipped).</summary>
    public static byte[]? FrameL3Payload(ReadOnlySpan<byte> frame)
    {
        int off = 12;
        while (off + 2 <= frame.Length && BinaryPrimitives.ReadUInt16BigEndian(frame[off..]) is 0x8100 or 0x88a8) off += 4;
        if (off + 2 > frame.Length) return null;
        var type = BinaryPrimitives.ReadUInt16BigEndian(frame[off..]);
        return type is 0x0800 or 0x86dd ? L3Payload(frame, off + 2) : null;
    }
}
