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
    public override string ToString() => Type switch
    {
        RejectType.TcpReset => "reject with tcp reset",
        RejectType.IcmpxUnreachable => $"reject with icmpx {IcmpCode}",
        _ => $"reject with icmp {IcmpCode}",
    };
}
