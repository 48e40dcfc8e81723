namespace Bpfilter.Backend.Ir;

/// <summary>Something a matcher reads from a packet: a meta key or a protocol header field.</summary>
public abstract record Field
{
    /// <summary>Width of the field in bits; values compared against it are ceil(bits/8) bytes.</summary>
    public abstract int Bits { get; }
    public int Bytes => (Bits + 7) / 8;
    public abstract ValueDisplay Display { get; }
}

/// <summary>Packet metadata, as nf_tables' meta expression provides it.</summary>
public sealed record MetaField(MetaKey Key) : Field
{
    public override int Bits => Key switch
    {
        MetaKey.NfProto or MetaKey.L4Proto or MetaKey.PktType => 8,
        MetaKey.Protocol => 16,
        MetaKey.IifName or MetaKey.OifName => 128,
        _ => 32,
    };

    public override ValueDisplay Display => Key switch
    {
        MetaKey.IifName or MetaKey.OifName => ValueDisplay.String,
        MetaKey.Protocol or MetaKey.Mark => ValueDisplay.Hex,
        _ => ValueDisplay.Decimal,
    };

    public override string ToString() => "meta " + Key.ToString().ToLowerInvariant();
}

/// <summary>Meta keys. Values are big-endian numbers of the field's width (see <see cref="Value"/>).</summary>
public enum MetaKey
{
    /// <summary>Network protocol family as netfilter numbers it: NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10. 8 bits.</summary>
    NfProto,
    /// <summary>Transport protocol (IPPROTO_*) after IPv6 extension headers. 8 bits.</summary>
    L4Proto,
    /// <summary>EtherType of the network header (skb->protocol; inner type after a VLAN tag). 16 bits.</summary>
    Protocol,
    /// <summary>Input interface index. 32 bits.</summary>
    Iif,
    /// <summary>Output interface index. 32 bits.</summary>
    Oif,
    /// <summary>Input interface name, 16 bytes zero padded.</summary>
    IifName,
    /// <summary>Output interface name, 16 bytes zero padded.</summary>
    OifName,
    /// <summary>skb->mark. 32 bits.</summary>
    Mark,
    /// <summary>PACKET_HOST = 0, BROADCAST = 1, MULTICAST = 2, OTHERHOST = 3. 8 bits.</summary>
    PktType,
    /// <summary>Packet length in bytes (skb->len). 32 bits.</summary>
    Length,
}

/// <summary>Where a payload offset starts, as nf_tables' payload bases.</summary>
public enum PayloadBase
{
    /// <summary>The Ethernet header (only where one exists: XDP/TC; not at netfilter hooks).</summary>
    Link,
    /// <summary>The IPv4/IPv6 header.</summary>
    Network,
    /// <summary>
    /// The transport header (after IPv6 extension headers). nf_tables' slow path finds none in a
    /// non-first fragment; its fast path reads there anyway (<see cref="PayloadField.FastLoad"/>).
    /// </summary>
    Transport,
}

/// <summary>An nf_tables payload load: <paramref name="Length"/> bytes at byte <paramref name="Offset"/> from its base.</summary>
public sealed record PayloadLoad(int Offset, int Length)
{
    /// <summary>nft_payload_select_ops picks the fast path (link-layer and inner bases aside).</summary>
    public static PayloadLoad? Fast(int offset, int length) =>
        length is 1 or 2 or 4 && offset % length == 0 ? new PayloadLoad(offset, length) : null;
}

/// <summary>
/// The header a named field belongs to. A field of a header implies that header is present
/// (the dependency nft adds as `meta nfproto ipv4`, `meta l4proto tcp`, `ether type vlan`):
/// the backend checks it, and a packet without that header fails the matcher.
/// <see cref="Raw"/> carries no protocol dependency (nft's `@nh,off,len` raw payload).
/// </summary>
public enum HeaderProtocol { Raw, Ether, Vlan, Ip, Ip6, Tcp, Udp, Icmp, Icmpv6 }

/// <summary>
/// A header field: base + offset + length in bits, and the header protocol it implies.
/// Identity is (Protocol, Base, OffsetBits, LengthBits); the name is looked up for display only.
/// Sub-byte fields (ip dscp, vlan id, tcp flags nibbles) are fine: offset and length need not be byte aligned.
/// </summary>
public sealed record PayloadField : Field
{
    public const int MaxBits = 128 * 4;

    public PayloadField(HeaderProtocol protocol, PayloadBase @base, int offsetBits, int lengthBits)
    {
        if (offsetBits < 0) throw new ArgumentOutOfRangeException(nameof(offsetBits));
        if (lengthBits <= 0 || lengthBits > MaxBits) throw new ArgumentOutOfRangeException(nameof(lengthBits));
        if (protocol != HeaderProtocol.Raw && BaseOf(protocol) != @base)
            throw new ArgumentException($"{protocol} fields live at the {BaseOf(protocol)} base, not {@base}");
        Protocol = protocol;
        Base = @base;
        OffsetBits = offsetBits;
        LengthBits = lengthBits;
    }

    public HeaderProtocol Protocol { get; }
    public PayloadBase Base { get; }
    public int OffsetBits { get; }
    public int LengthBits { get; }
    public override int Bits => LengthBits;

    /// <summary>
    /// Set on transport fields whose nf_tables payload load nft_payload_fast_eval runs (1, 2 or 4
    /// bytes at an offset aligned to the length): the kernel then reads the bytes at its transport
    /// offset even in a non-first fragment, as long as the load lies in the skb's linear area.
    /// Null: the load goes through nft_payload_eval, which finds no transport header in a non-first fragment.
    /// </summary>
    public PayloadLoad? FastLoad { get; init; }

    /// <summary>A raw payload field with no protocol dependency (`@nh,96,32`).</summary>
    public static PayloadField Raw(PayloadBase @base, int offsetBits, int lengthBits) =>
        new(HeaderProtocol.Raw, @base, offsetBits, lengthBits);

    public static PayloadBase BaseOf(HeaderProtocol protocol) => protocol switch
    {
        HeaderProtocol.Ether or HeaderProtocol.Vlan => PayloadBase.Link,
        HeaderProtocol.Ip or HeaderProtocol.Ip6 => PayloadBase.Network,
        HeaderProtocol.Raw => throw new ArgumentException("raw fields have no implied base"),
        _ => PayloadBase.Transport,
    };

    /// <summary>The well-known name (`ip saddr`) if the field is in the catalog.</summary>
    public string? Name => Fields.NameOf(this);

    public override ValueDisplay Display => Fields.DisplayOf(this);

    public override string ToString()
    {
        if (Name is { } name) return name;
        var b = Base switch { PayloadBase.Link => "ll", PayloadBase.Network => "nh", _ => "th" };
        var raw = $"@{b},{OffsetBits},{LengthBits}";
        return Protocol == HeaderProtocol.Raw ? raw : Protocol.ToString().ToLowerInvariant() + " " + raw;
    }
}
