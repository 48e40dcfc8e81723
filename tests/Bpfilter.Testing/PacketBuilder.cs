using System.Net;
using static Bpfilter.Testing.PacketLayers;

namespace Bpfilter.Testing;

/// <summary>
/// Builds one test frame fluently: Ethernet (+ VLAN tags), IPv4 (options, fragment field) or IPv6
/// (extension headers), TCP/UDP/ICMP/ICMPv6 with correct checksums, padded to the Ethernet minimum.
/// The layers' bytes come from <see cref="PacketLayers"/>.
/// </summary>
public sealed class PacketBuilder
{
    public static readonly byte[] DstMac = [0x02, 0, 0, 0, 0, 0x02];
    public static readonly byte[] SrcMac = [0x02, 0, 0, 0, 0, 0x01];

    readonly List<VlanTag> _tags = [];
    int? _etherType;
    Func<int, byte[], byte[]>? _ip; // (upper protocol, upper bytes) → IP packet
    IPAddress? _src, _dst;
    Func<IPAddress, IPAddress, byte[], (int Proto, byte[] Bytes)>? _l4; // (src, dst, payload) → upper layer
    int _payload;

    /// <summary>An Ethernet frame, with one VLAN tag when <paramref name="vlanId"/> is given (more with <see cref="Vlan"/>).</summary>
    public static PacketBuilder Ether(ushort? vlanId = null, ushort? etherType = null, ushort tpid = 0x8100)
    {
        var p = new PacketBuilder { _etherType = etherType };
        if (vlanId is { } id) p._tags.Add(new VlanTag(id, tpid));
        return p;
    }

    /// <summary>One more VLAN tag, inside those already there.</summary>
    public PacketBuilder Vlan(ushort id, ushort tpid = 0x8100, byte pcp = 0, byte dei = 0)
    {
        _tags.Add(new VlanTag(id, tpid, pcp, dei));
        return this;
    }

    /// <param name="fragment">The raw flags and fragment offset field (offset in 8-byte units, MF 0x2000, DF 0x4000).</param>
    public PacketBuilder Ipv4(string src, string dst, int ttl = 64, byte[]? options = null, ushort fragment = 0, byte tos = 0, ushort id = 0)
    {
        if ((fragment & 0x8000) != 0) throw new ArgumentException("the reserved IPv4 flag", nameof(fragment));
        _etherType ??= EtherIPv4;
        _src = IPAddress.Parse(src);
        _dst = IPAddress.Parse(dst);
        _ip = (proto, upper) => PacketLayers.Ipv4(_src, _dst, proto, upper, tos, id, dontFragment: (fragment & 0x4000) != 0,
            moreFragments: (fragment & 0x2000) != 0, fragmentOffset: (fragment & 0x1fff) * 8, ttl: (byte)ttl, options: options);
        return this;
    }

    /// <summary>
    /// IPv6 with extension headers given as (type, total length in bytes): hop-by-hop (0) and
    /// destination options (60) of that length, routing (43, 24 bytes); a fragment header is
    /// (44, fragment offset in 8-byte units).
    /// </summary>
    public PacketBuilder Ipv6(string src, string dst, params (byte Type, int Value)[] ext)
    {
        _etherType ??= EtherIPv6;
        _src = IPAddress.Parse(src);
        _dst = IPAddress.Parse(dst);
        var headers = ext.Select(e => e.Type switch
        {
            ProtoHopByHop or ProtoDstOpts when e.Value >= 8 && e.Value % 8 == 0 => Ipv6Options(e.Type == ProtoDstOpts, e.Value / 8 - 1),
            ProtoRouting when e.Value == 24 => Ipv6Routing(0, 0, _dst),
            ProtoFragment => Ipv6Fragment(e.Value * 8, more: false, id: 1),
            _ => throw new ArgumentException($"extension header ({e.Type}, {e.Value}): hop-by-hop/destination options of a multiple of 8 bytes, routing of 24, or fragment"),
        }).ToList();
        _ip = (proto, upper) => Ipv6Packets(_src, _dst, headers, proto, upper)[0];
        return this;
    }

    public PacketBuilder Tcp(ushort sport, ushort dport, byte flags = 0x02, uint seq = 0, uint ack = 0, ushort window = 64240)
    {
        _l4 = (s, d, payload) => (ProtoTcp, PacketLayers.Tcp(s, d, sport, dport, flags, payload, seq, ack, window));
        return this;
    }

    /// <summary>UDP with <paramref name="payload"/> zero bytes of data.</summary>
    public PacketBuilder Udp(ushort sport, ushort dport, int payload = 8)
    {
        _payload += payload;
        _l4 = (s, d, data) => (ProtoUdp, PacketLayers.Udp(s, d, sport, dport, data));
        return this;
    }

    /// <summary>ICMP, or ICMPv6 with <paramref name="proto"/> 58, with id 1 and sequence 1.</summary>
    public PacketBuilder Icmp(byte type, byte code = 0, byte proto = ProtoIcmp, ushort id = 1, ushort seq = 1)
    {
        _l4 = (s, d, data) => (proto, PacketLayers.Icmp(s, d, proto == ProtoIcmpV6, type, code, id, seq, data));
        return this;
    }

    /// <summary>Appends <paramref name="bytes"/> zero bytes of upper-layer data.</summary>
    public PacketBuilder Payload(int bytes)
    {
        _payload += bytes;
        return this;
    }

    public byte[] Build()
    {
        byte[] l3 = [];
        if (_ip != null)
        {
            var data = new byte[_payload];
            var (proto, upper) = _l4?.Invoke(_src!, _dst!, data) ?? (ProtoNone, data);
            l3 = _ip(proto, upper);
        }
        var frame = Ethernet(DstMac, SrcMac, _tags, _etherType ?? EtherArp, l3);
        if (frame.Length < 60) Array.Resize(ref frame, 60); // Ethernet minimum frame (without FCS)
        return frame;
    }

    public static implicit operator byte[](PacketBuilder p) => p.Build();
}
