namespace Bpfilter.Backend.Ir;

/// <summary>
/// A key of the packet's conntrack entry, as nf_tables' ct expression loads it (nft_ct_get_eval), for the
/// tuple keys (addresses, ports) and `ct original|reply zone` in one direction (<see cref="Dir"/>).
/// <see cref="CtReadKey.Label"/> is the entry's 128 label bits, all zero when it has no label extension.
/// Only <see cref="CtReadKey.State"/> has a value for a packet without an entry (invalid or untracked);
/// for every other key such a packet fails the matcher whatever the operator (NFT_BREAK), also for `!=`,
/// and so does an entry of the other family for the ip/ip6 address keys.
/// Values are big-endian numbers of the field's width, like every IR value.
/// </summary>
public sealed record CtField(CtReadKey Key, CtDirection? Dir = null) : Field
{
    public override int Bits => Key switch
    {
        CtReadKey.Direction or CtReadKey.L3Proto or CtReadKey.Protocol => 8,
        CtReadKey.Zone or CtReadKey.ProtoSrc or CtReadKey.ProtoDst => 16,
        CtReadKey.SrcIp6 or CtReadKey.DstIp6 or CtReadKey.Label => 128,
        _ => 32,
    };

    public override ValueDisplay Display => Key switch
    {
        CtReadKey.Direction or CtReadKey.Zone or CtReadKey.L3Proto or CtReadKey.Protocol or CtReadKey.ProtoSrc
            or CtReadKey.ProtoDst or CtReadKey.Expiration => ValueDisplay.Decimal,
        CtReadKey.Src or CtReadKey.Dst or CtReadKey.SrcIp or CtReadKey.DstIp => ValueDisplay.Ipv4,
        CtReadKey.SrcIp6 or CtReadKey.DstIp6 => ValueDisplay.Ipv6,
        _ => ValueDisplay.Hex,
    };

    /// <summary>Whether the key reads the entry's tuple of one direction (and needs <see cref="Dir"/>).</summary>
    public bool IsTupleKey => Key is CtReadKey.Src or CtReadKey.Dst or CtReadKey.SrcIp or CtReadKey.DstIp
        or CtReadKey.SrcIp6 or CtReadKey.DstIp6 or CtReadKey.ProtoSrc or CtReadKey.ProtoDst;

    public override string ToString()
    {
        var name = Key switch
        {
            CtReadKey.L3Proto => "l3proto",
            CtReadKey.Src => "saddr",
            CtReadKey.Dst => "daddr",
            CtReadKey.SrcIp => "ip saddr",
            CtReadKey.DstIp => "ip daddr",
            CtReadKey.SrcIp6 => "ip6 saddr",
            CtReadKey.DstIp6 => "ip6 daddr",
            CtReadKey.ProtoSrc => "proto-src",
            CtReadKey.ProtoDst => "proto-dst",
            _ => Key.ToString().ToLowerInvariant(),
        };
        return Dir is { } d ? $"ct {d.ToString().ToLowerInvariant()} {name}" : "ct " + name;
    }
}

/// <summary>The direction of a conntrack tuple (IP_CT_DIR_ORIGINAL = 0, IP_CT_DIR_REPLY = 1).</summary>
public enum CtDirection
{
    Original,
    Reply,
}

/// <summary>Conntrack keys a matcher reads (nft_ct get); <see cref="CtKey"/> are the ones a statement writes.</summary>
public enum CtReadKey
{
    /// <summary>
    /// One bit of nft's ct_state bitmask: invalid = 1, established = 2, related = 4, new = 8, untracked = 64.
    /// 32 bits.
    /// </summary>
    State,
    /// <summary>original = 0, reply = 1. 8 bits.</summary>
    Direction,
    /// <summary>The entry's IPS_* status bits (nf_conn.status). 32 bits.</summary>
    Status,
    /// <summary>nf_conn.mark. 32 bits.</summary>
    Mark,
    /// <summary>
    /// The entry's zone id: nf_conn.zone.id whatever the zone's direction flags, or for one direction
    /// the id if the zone applies to that direction, else 0 (nf_ct_zone_id). 16 bits.
    /// </summary>
    Zone,
    /// <summary>Milliseconds until the entry expires, 0 once past (jiffies_to_msecs(nf_ct_expires)). 32 bits.</summary>
    Expiration,
    /// <summary>The entry's network family (NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10; nf_ct_l3num). 8 bits.</summary>
    L3Proto,
    /// <summary>The entry's transport protocol (IPPROTO_*; nf_ct_protonum). 8 bits.</summary>
    Protocol,
    /// <summary>
    /// The first 4 bytes of the tuple's source address, whatever the entry's family: an IPv4 address or
    /// the start of an IPv6 one (nft's family-dependent `ct original saddr` compared over at most 4 bytes). 32 bits.
    /// </summary>
    Src,
    /// <summary>As <see cref="Src"/> for the destination address. 32 bits.</summary>
    Dst,
    /// <summary>The tuple's IPv4 source address; absent for an IPv6 entry. 32 bits.</summary>
    SrcIp,
    /// <summary>The tuple's IPv4 destination address; absent for an IPv6 entry. 32 bits.</summary>
    DstIp,
    /// <summary>The tuple's IPv6 source address; absent for an IPv4 entry. 128 bits.</summary>
    SrcIp6,
    /// <summary>The tuple's IPv6 destination address; absent for an IPv4 entry. 128 bits.</summary>
    DstIp6,
    /// <summary>The tuple's source port, ICMP id or GRE key part (src.u.all, network order). 16 bits.</summary>
    ProtoSrc,
    /// <summary>The tuple's destination port, or ICMP type and code (dst.u.all, network order). 16 bits.</summary>
    ProtoDst,
    /// <summary>
    /// The entry's connection labels as nft loads them (nf_conn_labels.bits, 16 bytes copied as they are in memory:
    /// label N is bit N % 8 of byte N / 8 on little-endian machines), or 16 zero bytes when the entry has no
    /// label extension (nft_ct_get_eval memsets the register). The value is those bytes read in order as one
    /// big-endian number, so nft's masks and constants keep their byte positions. 128 bits.
    /// </summary>
    Label,
}

/// <summary>Conntrack field instances and the ct_state bits.</summary>
public static class CtFields
{
    public static readonly CtField State = new(CtReadKey.State);
    public static readonly CtField Direction = new(CtReadKey.Direction);
    public static readonly CtField Status = new(CtReadKey.Status);
    public static readonly CtField Mark = new(CtReadKey.Mark);
    public static readonly CtField Zone = new(CtReadKey.Zone);

    /// <summary>nft's ct_state bits (NF_CT_STATE_INVALID_BIT, NF_CT_STATE_BIT(ctinfo), NF_CT_STATE_UNTRACKED_BIT).</summary>
    public const uint Invalid = 1, Established = 2, Related = 4, New = 8, Untracked = 64;
}
