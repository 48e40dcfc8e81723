using System.Buffers.Binary;
using Bpfilter.Backend.Log;
using static Bpfilter.Backend.Tests.Log.LogFrames;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>Addresses of one test run: the real MACs of the veth pair and the addresses used in crafted packets.</summary>
public sealed record LogNet(byte[] ClientMac, byte[] ServerMac, string Client, string Server)
{
    public const string Client6 = "fd00:5eed::1", Server6 = "fd00:5eed::2";
    public static readonly byte[] FakeMac = [0x02, 0, 0, 0, 0, 0x77];
}

/// <summary>One packet and one log statement: the frame the client sends and what `log` is configured with.</summary>
public sealed record LogCase(string Name, ushort EtherType, LogConfig Config, Func<LogNet, byte[]> Payload, uint Mark = 0)
{
    /// <summary>The statement's arguments after the prefix, in nft syntax.</summary>
    public string NftArguments
    {
        get
        {
            var parts = new List<string> { "level " + new[] { "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug" }[Config.Level] };
            var f = Config.Flags;
            if (f == NfLogFlags.All) parts.Add("flags all");
            else
            {
                var tcp = new List<string>();
                if (f.HasFlag(NfLogFlags.TcpSequence)) tcp.Add("sequence");
                if (f.HasFlag(NfLogFlags.TcpOptions)) tcp.Add("options");
                if (tcp.Count > 0) parts.Add("flags tcp " + string.Join(',', tcp));
                if (f.HasFlag(NfLogFlags.IpOptions)) parts.Add("flags ip options");
                if (f.HasFlag(NfLogFlags.Uid)) parts.Add("flags skuid");
                if (f.HasFlag(NfLogFlags.MacDecode)) parts.Add("flags ether");
            }
            return string.Join(' ', parts);
        }
    }

    public byte[] Frame(LogNet net, byte[]? source = null) => Ether(net.ServerMac, source ?? net.ClientMac, EtherType, Payload(net));

    /// <summary>
    /// The event nf_log sees for this frame at an ip/ip6/arp hook on the receiving device: MAC header =
    /// the Ethernet header, network length = the IP length (ip_rcv/ipv6_rcv trim the skb to it
    /// before the hooks), or the whole rest of the frame at netdev ingress and for ARP.
    /// </summary>
    public LogEvent ExpectedEvent(byte[] frame, byte family, string inDevice, bool trimmed) =>
        ExpectedEvent(frame, family, inDevice, trimmed, untag: !trimmed);

    private LogEvent ExpectedEvent(byte[] frame, byte family, string inDevice, bool trimmed, bool untag)
    {
        if (untag && EtherType is 0x8100 or 0x88a8)
        {
            // Netdev ingress sees the frame after skb_vlan_untag: the tag held out of band, the MAC
            // addresses moved up to the inner EtherType, the network header after it.
            var inner = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(16));
            var untagged = new LogCase(Name, inner, Config, Payload, Mark)
                .ExpectedEvent([.. frame[..12], .. frame[16..]], family, inDevice, trimmed: false, untag: false); // one tag only
            return untagged with
            {
                Flags = untagged.Flags | LogEventFlags.VlanPresent,
                VlanProto = EtherType,
                VlanTci = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(14)),
            };
        }
        var l3 = frame.AsSpan(14);
        var length = !trimmed ? l3.Length
            : EtherType == 0x0800 ? BinaryPrimitives.ReadUInt16BigEndian(l3[2..])
            : EtherType == 0x86dd ? BinaryPrimitives.ReadUInt16BigEndian(l3[4..]) + 40
            : l3.Length;
        return new LogEvent
        {
            Family = family,
            Flags = LogEventFlags.HasIn | LogEventFlags.MacHeaderSet,
            Mark = Mark,
            NetworkLength = (uint)length,
            Protocol = EtherType,
            DevType = 1,
            HardHeaderLen = 14,
            MacHeaderLen = 14,
            InName = inDevice,
            Mac = frame[..14],
            Packet = l3[..Math.Min(length, LogEvent.PacketCapacity)].ToArray(),
        };
    }

    public override string ToString() => Name;

    private static LogConfig C(int level = 4, NfLogFlags flags = NfLogFlags.None) => new("", level, flags);

    private static readonly byte[] TcpOptions =
        [0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07];

    /// <summary>IPv4 and IPv6 packets for ip/ip6 hooks; the prefix is filled in per run.</summary>
    public static readonly LogCase[] Ip =
    [
        new("udp4 default", 0x0800, C(), n => Ipv4(n.Client, n.Server, 17, Udp(40000, 5353, 12))),
        new("tcp4 syn flags all", 0x0800, C(6, NfLogFlags.All),
            n => Ipv4(n.Client, n.Server, 6, Tcp(40001, 80, 0x11223344, 0, 0x02, options: TcpOptions))),
        new("tcp4 sequence+options, all flag bits", 0x0800, C(5, NfLogFlags.TcpSequence | NfLogFlags.TcpOptions),
            n => Ipv4(n.Client, n.Server, 6, Tcp(40002, 443, 1, 4000000000, 0xff, window: 1000, urg: 77, options: [1, 1, 1, 0], ae: true, payload: 5))),
        new("tcp4 reserved bits, no options flag", 0x0800, C(3),
            n => Ipv4(n.Client, n.Server, 6, Tcp(40003, 22, 9, 9, 0x10, options: TcpOptions, reserved: 7))),
        new("ip options", 0x0800, C(7, NfLogFlags.IpOptions),
            n => Ipv4(n.Client, n.Server, 17, Udp(40004, 53), options: [0x07, 0x07, 0x04, 0, 0, 0, 0, 0x00])),
        new("ip options not asked", 0x0800, C(),
            n => Ipv4(n.Client, n.Server, 17, Udp(40005, 53), options: [0x01, 0x01, 0x01, 0x00])),
        new("tos, ce, first fragment", 0x0800, C(4, NfLogFlags.All),
            n => Ipv4(n.Client, n.Server, 17, Udp(40006, 9, 40), tos: 0xbb, frag: 0x8000 | 0x2000, ttl: 3)),
        new("later fragment", 0x0800, C(4, NfLogFlags.All),
            n => Ipv4(n.Client, n.Server, 6, new byte[24], id: 7, frag: 0x0005)),
        new("icmp echo", 0x0800, C(6), n => Ipv4(n.Client, n.Server, 1, Icmp(8, 0, 0x12340007, new byte[16]))),
        new("icmp port unreachable quoting udp", 0x0800, C(4, NfLogFlags.All),
            n => Ipv4(n.Client, n.Server, 1, Icmp(3, 3, 0, Ipv4(n.Server, n.Client, 17, Udp(53, 40007, 4), id: 99)))),
        new("icmp frag needed quoting tcp", 0x0800, C(4, NfLogFlags.All),
            n => Ipv4(n.Client, n.Server, 1, Icmp(3, 4, 1400, Ipv4(n.Server, n.Client, 6, Tcp(80, 40008, 5, 6, 0x18)[..8], id: 98)))),
        new("icmp time exceeded with quoted options", 0x0800, C(4, NfLogFlags.IpOptions),
            n => Ipv4(n.Client, n.Server, 1, Icmp(11, 0, 0, Ipv4(n.Server, n.Client, 17, Udp(1, 2, 0), options: [0x01, 0x01, 0x01, 0x00])))),
        new("icmp redirect", 0x0800, C(), n => Ipv4(n.Client, n.Server, 1, Icmp(5, 1, 0x0a000001, Ipv4(n.Server, n.Client, 17, Udp(3, 4, 0))))),
        new("icmp parameter problem", 0x0800, C(), n => Ipv4(n.Client, n.Server, 1, Icmp(12, 0, 0x14000000, Ipv4(n.Server, n.Client, 17, Udp(3, 4, 0))))),
        new("icmp incomplete echo", 0x0800, C(), n => Ipv4(n.Client, n.Server, 1, Icmp(8, 0, 1)[..6])),
        new("icmp timestamp too short", 0x0800, C(), n => Ipv4(n.Client, n.Server, 1, Icmp(13, 0, 0, new byte[4]))),
        new("truncated tcp", 0x0800, C(4, NfLogFlags.All), n => Ipv4(n.Client, n.Server, 6, new byte[10])),
        new("tcp options truncated", 0x0800, C(4, NfLogFlags.TcpOptions),
            n => Ipv4(n.Client, n.Server, 6, Tcp(40009, 80, 1, 2, 0x02, options: TcpOptions)[..28])),
        new("udplite", 0x0800, C(), n => Ipv4(n.Client, n.Server, 136, Udp(40010, 4000))),
        new("esp", 0x0800, C(), n => Ipv4(n.Client, n.Server, 50, [0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 0, 0])),
        new("ah", 0x0800, C(), n => Ipv4(n.Client, n.Server, 51, [17, 4, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1, .. new byte[12]])),
        new("gre", 0x0800, C(4, NfLogFlags.All), n => Ipv4(n.Client, n.Server, 47, new byte[8])),
        new("mark", 0x0800, C(), n => Ipv4(n.Client, n.Server, 17, Udp(40011, 7)), Mark: 0x2a),
        new("ether decode", 0x0800, C(4, NfLogFlags.MacDecode), n => Ipv4(n.Client, n.Server, 17, Udp(40012, 7))),
        new("udp6 flags all", 0x86dd, C(4, NfLogFlags.All), n => Ipv6(LogNet.Client6, LogNet.Server6, 17, Udp(40020, 53), tc: 0xb8, flow: 0x12345)),
        new("tcp6 options", 0x86dd, C(6, NfLogFlags.TcpSequence | NfLogFlags.TcpOptions),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 6, Tcp(40021, 80, 77, 0, 0x02, options: TcpOptions))),
        new("icmp6 echo", 0x86dd, C(), n => Ipv6(LogNet.Client6, LogNet.Server6, 58, Icmp(128, 0, 0x00050006, new byte[8]))),
        new("icmp6 unreachable quoting udp", 0x86dd, C(4, NfLogFlags.All),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 58, Icmp(1, 4, 0, Ipv6(LogNet.Server6, LogNet.Client6, 17, Udp(53, 40022, 0))))),
        new("icmp6 packet too big", 0x86dd, C(), n => Ipv6(LogNet.Client6, LogNet.Server6, 58, Icmp(2, 0, 1280, Ipv6(LogNet.Server6, LogNet.Client6, 6, Tcp(1, 2, 3, 4, 0x10))))),
        new("icmp6 parameter problem", 0x86dd, C(), n => Ipv6(LogNet.Client6, LogNet.Server6, 58, Icmp(4, 1, 40, Ipv6(LogNet.Server6, LogNet.Client6, 59, []))) ),
        new("hop-by-hop + dstopts, ip options", 0x86dd, C(4, NfLogFlags.IpOptions),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 0, [.. OptionHeader(60), .. OptionHeader(17), .. Udp(40023, 9)])),
        new("hop-by-hop + dstopts, no ip options", 0x86dd, C(),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 0, [.. OptionHeader(60), .. OptionHeader(17), .. Udp(40024, 9)])),
        new("first fragment", 0x86dd, C(4, NfLogFlags.IpOptions),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 44, [.. FragmentHeader(17, 0, true, 0xabcdef01), .. Udp(40025, 9, 16)])),
        new("later fragment then dstopts", 0x86dd, C(4, NfLogFlags.IpOptions),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 44, [.. FragmentHeader(60, 3, false, 5), .. OptionHeader(17), .. new byte[8]])),
        new("later fragment no options flag", 0x86dd, C(),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 44, [.. FragmentHeader(6, 3, false, 5), .. new byte[8]])),
        new("ipv6 ah then udp", 0x86dd, C(4, NfLogFlags.IpOptions),
            n => Ipv6(LogNet.Client6, LogNet.Server6, 51, [17, 4, 0, 0, 0, 0, 0x20, 0x02, 0, 0, 0, 1, .. new byte[12], .. Udp(40026, 9)])),
        new("ipv6 esp", 0x86dd, C(4, NfLogFlags.IpOptions), n => Ipv6(LogNet.Client6, LogNet.Server6, 50, [0, 0, 0x30, 0x39, 0, 0, 0, 1, 0, 0])),
        new("ipv6 no next header", 0x86dd, C(), n => Ipv6(LogNet.Client6, LogNet.Server6, 59, [])),
        new("ipv6 mark and ether", 0x86dd, C(5, NfLogFlags.MacDecode), n => Ipv6(LogNet.Client6, LogNet.Server6, 17, Udp(40027, 9)), Mark: 0x2a),
    ];
}
