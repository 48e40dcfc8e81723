using Bpfilter.Backend.Ir;

namespace Nft.Lifter;

/// <summary>
/// What earlier matches of a rule proved about the packet (nf_tables_offload.c's l3/l4 dependency
/// context): which header a network- or transport-base load reads, and whether link loads past the
/// Ethernet header read a VLAN tag.
/// </summary>
internal sealed class HeaderContext
{
    /// <summary>Ip or Ip6 once a match (or the table family) fixes the network protocol.</summary>
    public HeaderProtocol? L3 { get; set; }
    /// <summary>Tcp, Udp, Icmp, Icmpv6 or Raw (another transport protocol) once an l4 match fixes it.</summary>
    public HeaderProtocol? L4 { get; set; }
    /// <summary>
    /// The conntrack entry's family (NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10) once an earlier `ct l3proto` match
    /// fixes it: the rule goes no further for an entry of another family.
    /// </summary>
    public byte? CtFamily { get; set; }
    /// <summary>`ether type vlan` matched: link bytes 14..17 are the 802.1Q tag.</summary>
    public bool Vlan { get; set; }
    /// <summary>Link-layer loads are possible where the chain runs (netdev, inet ingress).</summary>
    public bool LinkLayer { get; init; }
    /// <summary>The chain sees every EtherType (netdev), not only IPv4/IPv6 (netfilter hooks, inet ingress).</summary>
    public bool AnyEtherType { get; init; }

    public static HeaderProtocol L4Of(ulong ipProto) => ipProto switch
    {
        6 => HeaderProtocol.Tcp,
        17 => HeaderProtocol.Udp,
        1 => HeaderProtocol.Icmp,
        58 => HeaderProtocol.Icmpv6,
        _ => HeaderProtocol.Raw,
    };
}
