namespace Bpfilter.Backend.Ir;

/// <summary>How a rejected packet is answered, as NFT_REJECT_* types.</summary>
public enum RejectType
{
    /// <summary>NFT_REJECT_ICMP_UNREACH: an ICMP (IPv4) or ICMPv6 (IPv6) unreachable with the family's code.</summary>
    IcmpUnreachable = 0,
    /// <summary>NFT_REJECT_TCP_RST: a TCP reset.</summary>
    TcpReset = 1,
    /// <summary>NFT_REJECT_ICMPX_UNREACH: a family-independent code, mapped to ICMP or ICMPv6 per packet.</summary>
    IcmpxUnreachable = 2,
}

/// <summary>
/// `reject`: answers the packet (TCP reset or ICMP unreachable with IcmpCode) and drops it. In
/// nf_tables reject is a statement that sets the drop verdict, so nothing runs after it: in the IR it
/// is the rule's verdict.
/// </summary>
public sealed record RejectVerdict(RejectType Type, byte IcmpCode = 0) : Verdict
{
    /// <summary>NFT_REJECT_ICMPX_MAX: no-route, port-unreachable, host-unreachable, admin-prohibited.</summary>
    public const byte IcmpxMax = 3;

    /// <summary>The ICMP (IPv4) code an IPv4 packet is answered with (nft_reject_icmp_code for icmpx).</summary>
    public byte Icmpv4Code => Type != RejectType.IcmpxUnreachable ? IcmpCode : (byte)(IcmpCode switch
    {
        0 => 0,  // no-route: ICMP_NET_UNREACH
        1 => 3,  // port-unreachable: ICMP_PORT_UNREACH
        2 => 1,  // host-unreachable: ICMP_HOST_UNREACH
        _ => 13, // admin-prohibited: ICMP_PKT_FILTERED
    });

    /// <summary>The ICMPv6 code an IPv6 packet is answered with (nft_reject_icmpv6_code for icmpx).</summary>
    public byte Icmpv6Code => Type != RejectType.IcmpxUnreachable ? IcmpCode : (byte)(IcmpCode switch
    {
        0 => 0, // no-route: ICMPV6_NOROUTE
        1 => 4, // port-unreachable: ICMPV6_PORT_UNREACH
        2 => 3, // host-unreachable: ICMPV6_ADDR_UNREACH
        _ => 1, // admin-prohibited: ICMPV6_ADM_PROHIBITED
    });

    public override string ToString() => Type switch
    {
        RejectType.TcpReset => "reject with tcp reset",
        RejectType.IcmpxUnreachable => $"reject with icmpx {IcmpCode}",
        _ => $"reject with icmp {IcmpCode}",
    };
}
