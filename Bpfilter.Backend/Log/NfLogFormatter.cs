using System.Buffers.Binary;
using System.Text;

namespace Bpfilter.Backend.Log;

/// <summary>
/// The text nf_log_syslog (the kernel's `log` backend for ip, ip6, inet, netdev, arp and bridge
/// families) writes for a packet, rebuilt from a <see cref="LogEvent"/>: prefix, IN=/OUT=, MAC=
/// (or MACSRC/MACDST/MACPROTO with `flags ether` on Ethernet devices), IPv4 with options, IPv6
/// with its extension headers, TCP (sequence, options), UDP/UDPLITE, ICMP with the quoted packet
/// of errors, ICMPv6, AH/ESP, ARP, UID/GID and MARK. The result is the line without the
/// syslog level (which the writer sends as &lt;N&gt;) and without the newline; like the kernel's
/// lines it usually ends with a space.
/// Offsets below are from the network header, as skb_header_pointer sees them at these hooks.
/// Not reproduced: PHYSIN/PHYSOUT (bridge netfilter only) and the TUNNEL= of SIT devices.
/// </summary>
public static class NfLogFormatter
{
    private const byte NfProtoIpv4 = 2, NfProtoArp = 3, NfProtoNetdev = 5, NfProtoBridge = 7, NfProtoIpv6 = 10;
    private const ushort ArphrdEther = 1;
    private const int EthHlen = 14;

    public static string Format(in LogEvent ev, LogConfig config)
    {
        var m = new StringBuilder(256);
        m.Append(config.Prefix).Append("IN=").Append(ev.InName).Append(" OUT=").Append(ev.OutName).Append(' ');
        var p = new PacketView(ev);
        try
        {
            Body(m, ev, config, p);
        }
        catch (CaptureExceededException)
        {
            // The kernel would have read on into the packet; say where the capture ended instead of guessing.
            m.Append("[bpfilter: packet beyond the ").Append(LogEvent.PacketCapacity).Append(" captured bytes]");
        }
        return m.ToString();
    }

    private static void Body(StringBuilder m, in LogEvent ev, LogConfig config, PacketView p)
    {
        switch (ev.Family)
        {
            case NfProtoIpv4:
                IpPacket(m, ev, config.Flags, p);
                break;
            case NfProtoIpv6:
                Ip6Packet(m, ev, config.Flags, p);
                break;
            case NfProtoArp:
                ArpPacket(m, ev, config.Flags, p);
                break;
            case NfProtoNetdev:
            case NfProtoBridge:
                switch (ev.Protocol)
                {
                    case 0x0800: IpPacket(m, ev, config.Flags, p); break;
                    case 0x86dd: Ip6Packet(m, ev, config.Flags, p); break;
                    case 0x0806 or 0x8035: ArpPacket(m, ev, config.Flags, p); break;
                    default: MacHeader(m, ev, config.Flags); break;
                }
                break;
            default:
                throw new ArgumentException($"no nf_log syslog logger for protocol family {ev.Family}");
        }
    }

    private static void IpPacket(StringBuilder m, in LogEvent ev, NfLogFlags flags, PacketView p)
    {
        if (ev.Flags.HasFlag(LogEventFlags.HasIn)) MacHeader(m, ev, flags);
        Ipv4(m, ev, flags, p, 0, outer: !ev.Flags.HasFlag(LogEventFlags.LinkLayerInData));
    }

    private static void Ip6Packet(StringBuilder m, in LogEvent ev, NfLogFlags flags, PacketView p)
    {
        if (ev.Flags.HasFlag(LogEventFlags.HasIn)) MacHeader(m, ev, flags);
        Ipv6(m, ev, flags, p, 0, recurse: true);
    }

    private static void MacHeader(StringBuilder m, in LogEvent ev, NfLogFlags flags)
    {
        var macSet = ev.Flags.HasFlag(LogEventFlags.MacHeaderSet);
        if (flags.HasFlag(NfLogFlags.MacDecode) && ev.DevType == ArphrdEther)
        {
            if (!macSet || ev.MacHeaderLen < EthHlen || ev.Mac.Length < EthHlen) return;
            DecodedEther(m, ev);
            return;
        }
        m.Append("MAC=");
        if (ev.HardHeaderLen != 0 && macSet && ev.MacHeaderLen != 0)
        {
            for (var i = 0; i < ev.Mac.Length; i++)
            {
                if (i > 0) m.Append(':');
                Hex2(m, ev.Mac[i]);
            }
        }
        m.Append(' ');
    }

    private static void DecodedEther(StringBuilder m, in LogEvent ev)
    {
        m.Append("MACSRC=");
        MacAddress(m, ev.Mac.AsSpan(6, 6));
        m.Append(" MACDST=");
        MacAddress(m, ev.Mac.AsSpan(0, 6));
        m.Append(' ');
        if (ev.Flags.HasFlag(LogEventFlags.VlanPresent))
            m.Append("VPROTO=").Append(ev.VlanProto.ToString("x4")).Append(" VID=").Append(ev.VlanTci & 0x0fff).Append(' ');
        m.Append("MACPROTO=").Append(BinaryPrimitives.ReadUInt16BigEndian(ev.Mac.AsSpan(12)).ToString("x4")).Append(' ');
    }

    private static void ArpPacket(StringBuilder m, in LogEvent ev, NfLogFlags flags, PacketView p)
    {
        if (!p.TryGet(0, 8, out var ah))
        {
            m.Append("TRUNCATED");
            return;
        }
        if (flags.HasFlag(NfLogFlags.MacDecode) && ev.DevType == ArphrdEther && ev.Flags.HasFlag(LogEventFlags.MacHeaderSet)
            && ev.MacHeaderLen >= EthHlen && ev.Mac.Length >= EthHlen)
            DecodedEther(m, ev);
        var hrd = BinaryPrimitives.ReadUInt16BigEndian(ah);
        m.Append("ARP HTYPE=").Append(hrd).Append(" PTYPE=0x").Append(BinaryPrimitives.ReadUInt16BigEndian(ah[2..]).ToString("x4"))
            .Append(" OPCODE=").Append(BinaryPrimitives.ReadUInt16BigEndian(ah[6..]));
        if (hrd != ArphrdEther || ah[4] != 6 || ah[5] != 4) return;
        if (!p.TryGet(8, 20, out var ap))
        {
            m.Append(" INCOMPLETE [").Append(ev.NetworkLength - 8).Append(" bytes]");
            return;
        }
        m.Append(" MACSRC=");
        MacAddress(m, ap[..6]);
        m.Append(" IPSRC=");
        Ipv4Address(m, ap.Slice(6, 4));
        m.Append(" MACDST=");
        MacAddress(m, ap.Slice(10, 6));
        m.Append(" IPDST=");
        Ipv4Address(m, ap.Slice(16, 4));
    }

    // ICMP types whose body nf_log needs in full before decoding it (0 = no requirement).
    private static int IcmpRequiredLength(byte type) => type switch
    {
        0 or 8 => 4,
        3 or 4 or 5 or 11 or 12 => 8 + 20,
        13 or 14 => 20,
        17 or 18 => 12,
        _ => 0,
    };

    /// <param name="outer">The kernel's <c>iphoff == 0</c>: the header is at skb->data, not quoted in an ICMP error.</param>
    private static void Ipv4(StringBuilder m, in LogEvent ev, NfLogFlags flags, PacketView p, int iphoff, bool outer)
    {
        if (!p.TryGet(iphoff, 20, out var ih))
        {
            m.Append("TRUNCATED");
            return;
        }
        m.Append("SRC=");
        Ipv4Address(m, ih.Slice(12, 4));
        m.Append(" DST=");
        Ipv4Address(m, ih.Slice(16, 4));
        var tos = ih[1];
        var fragOff = BinaryPrimitives.ReadUInt16BigEndian(ih[6..]);
        var protocol = ih[9];
        var ihl = (ih[0] & 0x0f) * 4;
        m.Append(" LEN=").Append(BinaryPrimitives.ReadUInt16BigEndian(ih[2..]))
            .Append(" TOS=0x").Append((tos & 0x1e).ToString("X2"))
            .Append(" PREC=0x").Append((tos & 0xe0).ToString("X2"))
            .Append(" TTL=").Append(ih[8])
            .Append(" ID=").Append(BinaryPrimitives.ReadUInt16BigEndian(ih[4..])).Append(' ');
        if ((fragOff & 0x8000) != 0) m.Append("CE ");
        if ((fragOff & 0x4000) != 0) m.Append("DF ");
        if ((fragOff & 0x2000) != 0) m.Append("MF ");
        var offset = fragOff & 0x1fff;
        if (offset != 0) m.Append("FRAG:").Append(offset).Append(' ');

        if (flags.HasFlag(NfLogFlags.IpOptions) && ihl > 20)
        {
            if (!p.TryGet(iphoff + 20, ihl - 20, out var opt))
            {
                m.Append("TRUNCATED");
                return;
            }
            m.Append("OPT (");
            foreach (var b in opt) m.Append(b.ToString("X2"));
            m.Append(") ");
        }

        var l4 = iphoff + ihl;
        switch (protocol)
        {
            case 6:
                if (Tcp(m, ev, flags, p, offset != 0, l4)) return;
                break;
            case 17:
            case 136:
                if (Udp(m, ev, p, protocol, offset != 0, l4)) return;
                break;
            case 1:
            {
                m.Append("PROTO=ICMP ");
                if (offset != 0) break;
                if (!p.TryGet(l4, 8, out var ich))
                {
                    m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)l4).Append(" bytes] ");
                    break;
                }
                var type = ich[0];
                m.Append("TYPE=").Append(type).Append(" CODE=").Append(ich[1]).Append(' ');
                var required = IcmpRequiredLength(type);
                if (required != 0 && ev.NetworkLength - (uint)l4 < required)
                {
                    m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)l4).Append(" bytes] ");
                    break;
                }
                switch (type)
                {
                    case 0:
                    case 8:
                        m.Append("ID=").Append(BinaryPrimitives.ReadUInt16BigEndian(ich[4..]))
                            .Append(" SEQ=").Append(BinaryPrimitives.ReadUInt16BigEndian(ich[6..])).Append(' ');
                        break;
                    case 12:
                        m.Append("PARAMETER=").Append(ich[4]).Append(' ');
                        break;
                    case 5:
                    case 3:
                    case 4:
                    case 11:
                        if (type == 5)
                        {
                            m.Append("GATEWAY=");
                            Ipv4Address(m, ich.Slice(4, 4));
                            m.Append(' ');
                        }
                        if (outer)
                        {
                            m.Append('[');
                            Ipv4(m, ev, flags, p, l4 + 8, outer: false);
                            m.Append("] ");
                        }
                        if (type == 3 && ich[1] == 4)
                            m.Append("MTU=").Append(BinaryPrimitives.ReadUInt16BigEndian(ich[6..])).Append(' ');
                        break;
                }
                break;
            }
            case 51:
            {
                if (offset != 0) break;
                m.Append("PROTO=AH ");
                if (!p.TryGet(l4, 12, out var ah))
                {
                    m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)l4).Append(" bytes] ");
                    break;
                }
                m.Append("SPI=0x").Append(BinaryPrimitives.ReadUInt32BigEndian(ah[4..]).ToString("x")).Append(' ');
                break;
            }
            case 50:
            {
                m.Append("PROTO=ESP ");
                if (offset != 0) break;
                if (!p.TryGet(l4, 8, out var eh))
                {
                    m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)l4).Append(" bytes] ");
                    break;
                }
                m.Append("SPI=0x").Append(BinaryPrimitives.ReadUInt32BigEndian(eh).ToString("x")).Append(' ');
                break;
            }
            default:
                m.Append("PROTO=").Append(protocol).Append(' ');
                break;
        }
        if (outer) SocketAndMark(m, ev, flags);
    }

    private static void SocketAndMark(StringBuilder m, in LogEvent ev, NfLogFlags flags)
    {
        if (flags.HasFlag(NfLogFlags.Uid) && ev.Flags.HasFlag(LogEventFlags.UidValid))
            m.Append("UID=").Append(ev.Uid).Append(" GID=").Append(ev.Gid).Append(' ');
        if (ev.Mark != 0) m.Append("MARK=0x").Append(ev.Mark.ToString("x")).Append(' ');
    }

    /// <summary>True when the kernel stops the line here (header or options missing).</summary>
    private static bool Tcp(StringBuilder m, in LogEvent ev, NfLogFlags flags, PacketView p, bool fragment, int offset)
    {
        m.Append("PROTO=TCP ");
        if (fragment) return false;
        if (!p.TryGet(offset, 20, out var th))
        {
            m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)offset).Append(" bytes] ");
            return true;
        }
        m.Append("SPT=").Append(BinaryPrimitives.ReadUInt16BigEndian(th)).Append(" DPT=").Append(BinaryPrimitives.ReadUInt16BigEndian(th[2..])).Append(' ');
        if (flags.HasFlag(NfLogFlags.TcpSequence))
            m.Append("SEQ=").Append(BinaryPrimitives.ReadUInt32BigEndian(th[4..])).Append(" ACK=").Append(BinaryPrimitives.ReadUInt32BigEndian(th[8..])).Append(' ');
        m.Append("WINDOW=").Append(BinaryPrimitives.ReadUInt16BigEndian(th[14..])).Append(' ');
        // TCP_RESERVED_BITS: the three reserved bits left of AE (AE itself is printed as a flag), shifted as the kernel does.
        m.Append("RES=0x").Append(((th[12] & 0x0e) << 2).ToString("x2")).Append(' ');
        var f = th[13];
        if ((th[12] & 0x01) != 0) m.Append("AE ");
        if ((f & 0x80) != 0) m.Append("CWR ");
        if ((f & 0x40) != 0) m.Append("ECE ");
        if ((f & 0x20) != 0) m.Append("URG ");
        if ((f & 0x10) != 0) m.Append("ACK ");
        if ((f & 0x08) != 0) m.Append("PSH ");
        if ((f & 0x04) != 0) m.Append("RST ");
        if ((f & 0x02) != 0) m.Append("SYN ");
        if ((f & 0x01) != 0) m.Append("FIN ");
        m.Append("URGP=").Append(BinaryPrimitives.ReadUInt16BigEndian(th[18..])).Append(' ');
        var doff = (th[12] >> 4) * 4;
        if (flags.HasFlag(NfLogFlags.TcpOptions) && doff > 20)
        {
            if (!p.TryGet(offset + 20, doff - 20, out var opt))
            {
                m.Append("OPT (TRUNCATED)");
                return true;
            }
            m.Append("OPT (");
            foreach (var b in opt) m.Append(b.ToString("X2"));
            m.Append(") ");
        }
        return false;
    }

    private static bool Udp(StringBuilder m, in LogEvent ev, PacketView p, byte protocol, bool fragment, int offset)
    {
        m.Append(protocol == 17 ? "PROTO=UDP " : "PROTO=UDPLITE ");
        if (fragment) return false;
        if (!p.TryGet(offset, 8, out var uh))
        {
            m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)offset).Append(" bytes] ");
            return true;
        }
        m.Append("SPT=").Append(BinaryPrimitives.ReadUInt16BigEndian(uh)).Append(" DPT=").Append(BinaryPrimitives.ReadUInt16BigEndian(uh[2..]))
            .Append(" LEN=").Append(BinaryPrimitives.ReadUInt16BigEndian(uh[4..])).Append(' ');
        return false;
    }

    // nf_ip6_ext_hdr: the headers nf_log walks (NONE ends the walk).
    private static bool IsExtensionHeader(byte h) => h is 0 or 43 or 44 or 50 or 51 or 60;

    private static void Ipv6(StringBuilder m, in LogEvent ev, NfLogFlags flags, PacketView p, int ip6hoff, bool recurse)
    {
        if (!p.TryGet(ip6hoff, 40, out var ih))
        {
            m.Append("TRUNCATED");
            return;
        }
        m.Append("SRC=");
        Ipv6Address(m, ih.Slice(8, 16));
        m.Append(" DST=");
        Ipv6Address(m, ih.Slice(24, 16));
        var word = BinaryPrimitives.ReadUInt32BigEndian(ih);
        m.Append(" LEN=").Append(BinaryPrimitives.ReadUInt16BigEndian(ih[4..]) + 40)
            .Append(" TC=").Append((word & 0x0ff00000) >> 20)
            .Append(" HOPLIMIT=").Append(ih[7])
            .Append(" FLOWLBL=").Append(word & 0x000fffff).Append(' ');

        var ipopt = flags.HasFlag(NfLogFlags.IpOptions);
        var fragment = false;
        var ptr = ip6hoff + 40;
        var current = ih[6];
        while (current != 59 && IsExtensionHeader(current))
        {
            if (!p.TryGet(ptr, 2, out var hp))
            {
                m.Append("TRUNCATED");
                return;
            }
            if (ipopt) m.Append("OPT ( ");
            int hdrlen;
            switch (current)
            {
                case 44:
                {
                    m.Append("FRAG:");
                    if (!p.TryGet(ptr, 8, out var fh))
                    {
                        m.Append("TRUNCATED ");
                        return;
                    }
                    var fragOff = BinaryPrimitives.ReadUInt16BigEndian(fh[2..]);
                    m.Append(fragOff & 0xfff8).Append(' ');
                    if ((fragOff & 1) != 0) m.Append("INCOMPLETE ");
                    m.Append("ID:").Append(BinaryPrimitives.ReadUInt32BigEndian(fh[4..]).ToString("x8")).Append(' ');
                    if ((fragOff & 0xfff8) != 0) fragment = true;
                    hdrlen = 8;
                    break;
                }
                case 60:
                case 43:
                case 0:
                    if (fragment)
                    {
                        if (ipopt) m.Append(')');
                        return;
                    }
                    hdrlen = (hp[1] + 1) * 8;
                    break;
                case 51:
                    if (ipopt)
                    {
                        m.Append("AH ");
                        if (fragment)
                        {
                            m.Append(')');
                            return;
                        }
                        if (!p.TryGet(ptr, 12, out var ah))
                        {
                            m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)ptr).Append(" bytes] )");
                            return;
                        }
                        m.Append("SPI=0x").Append(BinaryPrimitives.ReadUInt32BigEndian(ah[4..]).ToString("x")).Append(' ');
                    }
                    hdrlen = (hp[1] + 2) << 2;
                    break;
                default: // 50, ESP: nothing after it can be read
                    if (ipopt)
                    {
                        m.Append("ESP ");
                        if (fragment)
                        {
                            m.Append(')');
                            return;
                        }
                        if (!p.TryGet(ptr, 8, out var eh))
                        {
                            m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)ptr).Append(" bytes] )");
                            return;
                        }
                        m.Append("SPI=0x").Append(BinaryPrimitives.ReadUInt32BigEndian(eh).ToString("x")).Append(" )");
                    }
                    return;
            }
            if (ipopt) m.Append(") ");
            current = hp[0];
            ptr += hdrlen;
        }

        switch (current)
        {
            case 6:
                if (Tcp(m, ev, flags, p, fragment, ptr)) return;
                break;
            case 17:
            case 136:
                if (Udp(m, ev, p, current, fragment, ptr)) return;
                break;
            case 58:
            {
                m.Append("PROTO=ICMPv6 ");
                if (fragment) break;
                if (!p.TryGet(ptr, 8, out var ic))
                {
                    m.Append("INCOMPLETE [").Append(ev.NetworkLength - (uint)ptr).Append(" bytes] ");
                    return;
                }
                var type = ic[0];
                m.Append("TYPE=").Append(type).Append(" CODE=").Append(ic[1]).Append(' ');
                switch (type)
                {
                    case 128:
                    case 129:
                        m.Append("ID=").Append(BinaryPrimitives.ReadUInt16BigEndian(ic[4..]))
                            .Append(" SEQ=").Append(BinaryPrimitives.ReadUInt16BigEndian(ic[6..])).Append(' ');
                        break;
                    case 4:
                    case 1:
                    case 2:
                    case 3:
                        if (type == 4) m.Append("POINTER=").Append(BinaryPrimitives.ReadUInt32BigEndian(ic[4..]).ToString("x8")).Append(' ');
                        if (recurse)
                        {
                            m.Append('[');
                            Ipv6(m, ev, flags, p, ptr + 8, recurse: false);
                            m.Append("] ");
                        }
                        if (type == 2) m.Append("MTU=").Append(BinaryPrimitives.ReadUInt32BigEndian(ic[4..])).Append(' ');
                        break;
                }
                break;
            }
            default:
                m.Append("PROTO=").Append(current).Append(' ');
                break;
        }
        if (recurse) SocketAndMark(m, ev, flags);
    }

    private static void Hex2(StringBuilder m, byte b) => m.Append(b.ToString("x2"));

    private static void MacAddress(StringBuilder m, ReadOnlySpan<byte> a)
    {
        for (var i = 0; i < 6; i++)
        {
            if (i > 0) m.Append(':');
            Hex2(m, a[i]);
        }
    }

    private static void Ipv4Address(StringBuilder m, ReadOnlySpan<byte> a) =>
        m.Append(a[0]).Append('.').Append(a[1]).Append('.').Append(a[2]).Append('.').Append(a[3]);

    // %pI6: eight groups of four lower-case hex digits, never compressed.
    private static void Ipv6Address(StringBuilder m, ReadOnlySpan<byte> a)
    {
        for (var i = 0; i < 16; i += 2)
        {
            if (i > 0) m.Append(':');
            Hex2(m, a[i]);
            Hex2(m, a[i + 1]);
        }
    }

    private sealed class CaptureExceededException : Exception;

    /// <summary>
    /// skb_header_pointer over the captured bytes: a read past <see cref="LogEvent.NetworkLength"/>
    /// fails as in the kernel; a read inside the packet but past the capture ends the line, which
    /// then says so instead of pretending to be the kernel's.
    /// </summary>
    private sealed class PacketView(LogEvent ev)
    {
        private readonly byte[] _bytes = ev.Packet;
        private readonly uint _length = ev.NetworkLength;
        public bool TryGet(int offset, int length, out ReadOnlySpan<byte> bytes)
        {
            bytes = default;
            if (offset < 0 || (ulong)offset + (ulong)length > _length) return false;
            if (offset + length > _bytes.Length) throw new CaptureExceededException();
            bytes = _bytes.AsSpan(offset, length);
            return true;
        }
    }
}
