using Bpfilter.Backend.Ir;

namespace Nft.Lifter;

/// <summary>The IR's named header fields, listed so that the lifter can find the one a load falls in.</summary>
internal static class Catalog
{
    public static readonly PayloadField[] All =
    [
        Fields.Ether.Daddr, Fields.Ether.Saddr, Fields.Ether.Type,
        Fields.Vlan.Pcp, Fields.Vlan.Dei, Fields.Vlan.Id, Fields.Vlan.Type,
        Fields.Ip.Version, Fields.Ip.Hdrlength, Fields.Ip.Dscp, Fields.Ip.Ecn, Fields.Ip.Length, Fields.Ip.Id,
        Fields.Ip.FragOff, Fields.Ip.Ttl, Fields.Ip.Protocol, Fields.Ip.Checksum, Fields.Ip.Saddr, Fields.Ip.Daddr,
        Fields.Ip6.Version, Fields.Ip6.Dscp, Fields.Ip6.Ecn, Fields.Ip6.Flowlabel, Fields.Ip6.Length, Fields.Ip6.Nexthdr,
        Fields.Ip6.Hoplimit, Fields.Ip6.Saddr, Fields.Ip6.Daddr,
        Fields.Tcp.Sport, Fields.Tcp.Dport, Fields.Tcp.Sequence, Fields.Tcp.Ackseq, Fields.Tcp.Doff, Fields.Tcp.Flags,
        Fields.Tcp.Window, Fields.Tcp.Checksum, Fields.Tcp.Urgptr,
        Fields.Udp.Sport, Fields.Udp.Dport, Fields.Udp.Length, Fields.Udp.Checksum,
        Fields.Icmp.Type, Fields.Icmp.Code, Fields.Icmp.Checksum, Fields.Icmp.Id, Fields.Icmp.Sequence,
        Fields.Icmpv6.Type, Fields.Icmpv6.Code, Fields.Icmpv6.Checksum, Fields.Icmpv6.Id, Fields.Icmpv6.Sequence,
    ];

    public static bool IsNamed(PayloadField f) => f.Name != null;

    /// <summary>The smallest named field of the same header that contains the bits [off, off+len).</summary>
    public static PayloadField? Containing(HeaderProtocol p, int off, int len)
    {
        // a loop, not Where/OrderBy: every payload load of every rule asks; the first of the smallest wins, as the stable sort did
        PayloadField? best = null;
        foreach (var f in All)
            if (f.Protocol == p && f.OffsetBits <= off && off + len <= f.OffsetBits + f.LengthBits && (best is null || f.LengthBits < best.LengthBits))
                best = f;
        return best;
    }

    /// <summary>Size in bytes of each header the lifter names fields in (a load inside it belongs to it).</summary>
    public static int HeaderBits(HeaderProtocol p) => p switch
    {
        HeaderProtocol.Ether => 112,
        HeaderProtocol.Vlan => 144,
        HeaderProtocol.Ip => 160,
        HeaderProtocol.Ip6 => 320,
        HeaderProtocol.Tcp => 160,
        HeaderProtocol.Udp => 64,
        HeaderProtocol.Icmp or HeaderProtocol.Icmpv6 => 64,
        _ => 0,
    };
}
