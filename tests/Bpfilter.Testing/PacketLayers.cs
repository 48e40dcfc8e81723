using System.Buffers.Binary;
using System.Net;

namespace Bpfilter.Testing;

/// <summary>One 802.1Q/802.1ad tag: TPID, then PCP, DEI and the VLAN id in the TCI.</summary>
public readonly record struct VlanTag(ushort Id, ushort Tpid = 0x8100, byte Pcp = 0, byte Dei = 0);

/// <summary>
/// The bytes of each protocol layer a test packet can have: Ethernet (+ VLAN tags), IPv4 (options,
/// fragments), IPv6 (hop-by-hop, routing, destination options, fragment headers), TCP, UDP, ICMP and
/// ICMPv6, each with its correct checksum; and the parsing tests need to recognise packets again.
/// <see cref="PacketBuilder"/> composes these fluently; spec-driven crafters call them directly.
/// </summary>
public static class PacketLayers
{
    public const int ProtoHopByHop = 0, ProtoIcmp = 1, ProtoTcp = 6, ProtoUdp = 17, ProtoRouting = 43, ProtoFragment = 44,
        ProtoIcmpV6 = 58, ProtoNone = 59, ProtoDstOpts = 60;
    public const int EtherIPv4 = 0x0800, EtherArp = 0x0806, EtherIPv6 = 0x86dd;

    /// <summary>An Ethernet frame (no FCS) around <paramref name="packet"/>, tags in order outermost first.</summary>
    public static byte[] Ethernet(byte[] dstMac, byte[] srcMac, IReadOnlyList<VlanTag> tags, int etherType, ReadOnlySpan<byte> packet)
    {
        var f = new byte[14 + 4 * tags.Count + packet.Length];
        dstMac.CopyTo(f, 0);
        srcMac.CopyTo(f, 6);
        int off = 12;
        foreach (var v in tags)
        {
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(off), v.Tpid);
            BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(off + 2), (ushort)((v.Pcp & 7) << 13 | (v.Dei & 1) << 12 | (v.Id & 0xfff)));
            off += 4;
        }
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(off), (ushort)etherType);
        packet.CopyTo(f.AsSpan(off + 2));
        return f;
    }

    public static byte[] Udp(IPAddress src, IPAddress dst, ushort sport, ushort dport, ReadOnlySpan<byte> payload)
    {
        var m = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(0), sport);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), (ushort)m.Length);
        payload.CopyTo(m.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), Checksum.WithPseudoHeader(src, dst, ProtoUdp, m));
        return m;
    }

    public static byte[] Tcp(IPAddress src, IPAddress dst, ushort sport, ushort dport, byte flags, ReadOnlySpan<byte> payload,
        uint seq = 0, uint ack = 0, ushort window = 64240)
    {
        var m = new byte[20 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(0), sport);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(8), ack);
        m[12] = 5 << 4;
        m[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(14), window);
        payload.CopyTo(m.AsSpan(20));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(16), Checksum.WithPseudoHeader(src, dst, ProtoTcp, m));
        return m;
    }

    /// <summary>ICMP (plain checksum) or, with <paramref name="v6"/>, ICMPv6 (over the pseudo-header).</summary>
    public static byte[] Icmp(IPAddress src, IPAddress dst, bool v6, byte type, byte code, ushort id, ushort seq, ReadOnlySpan<byte> payload)
    {
        var m = new byte[8 + payload.Length];
        m[0] = type;
        m[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), id);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), seq);
        payload.CopyTo(m.AsSpan(8));
        var sum = v6 ? Checksum.WithPseudoHeader(src, dst, ProtoIcmpV6, m) : Checksum.Compute(m);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), sum);
        return m;
    }

    /// <summary>TCP flags by name: fin syn rst psh ack urg ecn cwr none, comma separated.</summary>
    public static byte TcpFlags(string text)
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

    /// <summary>
    /// An IPv4 packet with a correct header checksum. <paramref name="fragmentOffset"/> is in bytes
    /// (a multiple of 8); options are used as given (a multiple of 4 bytes, at most 40).
    /// </summary>
    public static byte[] Ipv4(IPAddress src, IPAddress dst, int protocol, ReadOnlySpan<byte> data, byte tos = 0, ushort id = 0,
        bool dontFragment = false, bool moreFragments = false, int fragmentOffset = 0, byte ttl = 64, byte[]? options = null)
    {
        var opts = options ?? [];
        if (opts.Length % 4 != 0 || opts.Length > 40) throw new FormatException($"IPv4 options of {opts.Length} bytes (a multiple of 4, at most 40)");
        if (fragmentOffset % 8 != 0) throw new FormatException($"fragment offset {fragmentOffset} is not a multiple of 8");
        var ihl = 20 + opts.Length;
        var p = new byte[ihl + data.Length];
        p[0] = (byte)(0x40 | ihl / 4);
        p[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), id);
        var flags = (dontFragment ? 1 << 14 : 0) | (moreFragments ? 1 << 13 : 0) | fragmentOffset / 8;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(6), (ushort)flags);
        p[8] = ttl;
        p[9] = (byte)protocol;
        src.GetAddressBytes().CopyTo(p, 12);
        dst.GetAddressBytes().CopyTo(p, 16);
        opts.CopyTo(p, 20);
        data.CopyTo(p.AsSpan(ihl));
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, ihl)));
        return p;
    }

    /// <summary>
    /// <paramref name="body"/> split into IPv4 fragments of <paramref name="size"/> bytes; only the
    /// options with the copied bit go into the fragments after the first (RFC 791).
    /// </summary>
    public static List<byte[]> Ipv4Fragments(IPAddress src, IPAddress dst, int protocol, byte[] body, int size, byte tos = 0,
        ushort id = 0, bool dontFragment = false, byte ttl = 64, byte[]? options = null)
    {
        var packets = new List<byte[]>();
        foreach (var (offset, length, more) in Fragments(body.Length, size))
            packets.Add(Ipv4(src, dst, protocol, body.AsSpan(offset, length), tos, id, dontFragment, more, offset, ttl,
                offset == 0 ? options : CopiedOptions(options ?? [])));
        return packets;
    }

    /// <summary>(offset, length, more fragments) per fragment of <paramref name="size"/> bytes (a positive multiple of 8).</summary>
    public static List<(int Offset, int Length, bool More)> Fragments(int total, int size)
    {
        if (size <= 0 || size % 8 != 0) throw new FormatException($"frags={size}: fragment size must be a positive multiple of 8");
        var list = new List<(int, int, bool)>();
        for (int off = 0; off < total; off += size)
            list.Add((off, Math.Min(size, total - off), off + size < total));
        return list;
    }

    /// <summary>IPv4 options by name (nop ra rr ts eol) or hex:BYTES, padded with EOL to a multiple of 4.</summary>
    public static byte[] Ipv4Options(string text)
    {
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

    /// <summary>The options a fragment after the first carries: those with the copied bit, padded.</summary>
    public static byte[] CopiedOptions(byte[] options)
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

    /// <summary>An IPv6 packet: the fixed header, then <paramref name="rest"/> (extension headers and upper layer).</summary>
    public static byte[] Ipv6(IPAddress src, IPAddress dst, int nextHeader, ReadOnlySpan<byte> rest, byte trafficClass = 0,
        uint flowLabel = 0, byte hopLimit = 64)
    {
        var p = new byte[40 + rest.Length];
        BinaryPrimitives.WriteUInt32BigEndian(p, 6u << 28 | (uint)trafficClass << 20 | (flowLabel & 0xfffff));
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(4), (ushort)rest.Length);
        p[6] = (byte)nextHeader;
        p[7] = hopLimit;
        src.GetAddressBytes().CopyTo(p, 8);
        dst.GetAddressBytes().CopyTo(p, 24);
        rest.CopyTo(p.AsSpan(40));
        return p;
    }

    /// <summary>
    /// A hop-by-hop (<paramref name="destination"/> false) or destination options header of
    /// 8 × (<paramref name="units"/> + 1) bytes. The first 8 bytes end with a PadN of 4; each further
    /// unit is one option of the experimental type 0x1e (RFC 4727), which receivers skip. Linux
    /// refuses runs of padding longer than 7 bytes. Byte 0 (next header) is filled in by Chain.
    /// </summary>
    public static (int Proto, byte[] Bytes) Ipv6Options(bool destination, int units)
    {
        var h = new byte[8 * (units + 1)];
        h[1] = (byte)units;
        h[2] = 1; // PadN
        h[3] = 4;
        for (int u = 1; u <= units; u++)
        {
            h[8 * u] = 0x1e;
            h[8 * u + 1] = 6;
        }
        return (destination ? ProtoDstOpts : ProtoHopByHop, h);
    }

    /// <summary>A routing header with one address; with segments left 0 it is only parsed (RFC 8200 4.4).</summary>
    public static (int Proto, byte[] Bytes) Ipv6Routing(byte type, byte segmentsLeft, IPAddress address)
    {
        var h = new byte[24];
        h[1] = 2;
        h[2] = type;
        h[3] = segmentsLeft;
        address.GetAddressBytes().CopyTo(h, 8);
        return (ProtoRouting, h);
    }

    /// <summary>A fragment header; offset 0 without more fragments is an atomic fragment (RFC 6946).</summary>
    public static (int Proto, byte[] Bytes) Ipv6Fragment(int offset, bool more, uint id)
    {
        if (offset % 8 != 0) throw new FormatException($"fragment offset {offset} is not a multiple of 8");
        var h = new byte[8];
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)(offset | (more ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(4), id);
        return (ProtoFragment, h);
    }

    /// <summary>Extension headers in order, each one's next-header byte naming the following one, the last <paramref name="last"/>.</summary>
    public static byte[] Chain(IReadOnlyList<(int Proto, byte[] Bytes)> headers, int last)
    {
        var r = new List<byte>();
        for (int k = 0; k < headers.Count; k++)
        {
            var b = (byte[])headers[k].Bytes.Clone();
            b[0] = (byte)(k + 1 < headers.Count ? headers[k + 1].Proto : last);
            r.AddRange(b);
        }
        return r.ToArray();
    }

    /// <summary>
    /// An IPv6 packet with extension headers and an upper-layer message <paramref name="body"/> of
    /// protocol <paramref name="upper"/>; with <paramref name="fragmentSize"/> the packets of its
    /// fragments: the fragment header goes after the last hop-by-hop/routing header (the
    /// unfragmentable part) and what follows it is split.
    /// </summary>
    public static List<byte[]> Ipv6Packets(IPAddress src, IPAddress dst, IReadOnlyList<(int Proto, byte[] Bytes)> headers, int upper,
        byte[] body, int? fragmentSize = null, uint fragmentId = 0, byte trafficClass = 0, uint flowLabel = 0, byte hopLimit = 64)
    {
        if (fragmentSize is not { } size)
        {
            var all = Chain(headers, upper).Concat(body).ToArray();
            return [Ipv6(src, dst, headers.Count > 0 ? headers[0].Proto : upper, all, trafficClass, flowLabel, hopLimit)];
        }
        int unfragmentable = 0;
        for (int k = 0; k < headers.Count; k++)
            if (headers[k].Proto is ProtoHopByHop or ProtoRouting) unfragmentable = k + 1;
        var front = headers.Take(unfragmentable).ToList();
        var back = headers.Skip(unfragmentable).ToList();
        var fragmentable = Chain(back, upper).Concat(body).ToArray();
        int fragmentableProto = back.Count > 0 ? back[0].Proto : upper;
        var unfrag = Chain(front, ProtoFragment);
        var packets = new List<byte[]>();
        foreach (var (offset, length, more) in Fragments(fragmentable.Length, size))
        {
            var fh = Ipv6Fragment(offset, more, fragmentId).Bytes;
            fh[0] = (byte)fragmentableProto;
            var rest = unfrag.Concat(fh).Concat(fragmentable.AsSpan(offset, length).ToArray()).ToArray();
            packets.Add(Ipv6(src, dst, front.Count > 0 ? front[0].Proto : ProtoFragment, rest, trafficClass, flowLabel, hopLimit));
        }
        return packets;
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
        return type is EtherIPv4 or EtherIPv6 ? L3Payload(frame, off + 2) : null;
    }
}
