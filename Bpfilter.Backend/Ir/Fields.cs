namespace Bpfilter.Backend.Ir;

/// <summary>
/// Catalog of well-known fields with nftables names. Offsets are the ones nft itself uses
/// (link-base offsets for vlan count from the start of the Ethernet header).
/// </summary>
public static class Fields
{
    public static readonly MetaField NfProto = new(MetaKey.NfProto);
    public static readonly MetaField L4Proto = new(MetaKey.L4Proto);
    public static readonly MetaField Protocol = new(MetaKey.Protocol);
    public static readonly MetaField Iif = new(MetaKey.Iif);
    public static readonly MetaField Oif = new(MetaKey.Oif);
    public static readonly MetaField IifName = new(MetaKey.IifName);
    public static readonly MetaField OifName = new(MetaKey.OifName);
    public static readonly MetaField Mark = new(MetaKey.Mark);
    public static readonly MetaField PktType = new(MetaKey.PktType);
    public static readonly MetaField Length = new(MetaKey.Length);

    public static class Ether
    {
        public static readonly PayloadField Daddr = F(HeaderProtocol.Ether, 0, 48, "ether daddr", ValueDisplay.Ether);
        public static readonly PayloadField Saddr = F(HeaderProtocol.Ether, 48, 48, "ether saddr", ValueDisplay.Ether);
        public static readonly PayloadField Type = F(HeaderProtocol.Ether, 96, 16, "ether type", ValueDisplay.Hex);
    }

    public static class Vlan
    {
        public static readonly PayloadField Pcp = F(HeaderProtocol.Vlan, 112, 3, "vlan pcp", ValueDisplay.Decimal);
        public static readonly PayloadField Dei = F(HeaderProtocol.Vlan, 115, 1, "vlan dei", ValueDisplay.Decimal);
        public static readonly PayloadField Id = F(HeaderProtocol.Vlan, 116, 12, "vlan id", ValueDisplay.Decimal);
        public static readonly PayloadField Type = F(HeaderProtocol.Vlan, 128, 16, "vlan type", ValueDisplay.Hex);
    }

    public static class Ip
    {
        public static readonly PayloadField Version = F(HeaderProtocol.Ip, 0, 4, "ip version", ValueDisplay.Decimal);
        public static readonly PayloadField Hdrlength = F(HeaderProtocol.Ip, 4, 4, "ip hdrlength", ValueDisplay.Decimal);
        public static readonly PayloadField Dscp = F(HeaderProtocol.Ip, 8, 6, "ip dscp", ValueDisplay.Hex);
        public static readonly PayloadField Ecn = F(HeaderProtocol.Ip, 14, 2, "ip ecn", ValueDisplay.Decimal);
        public static readonly PayloadField Length = F(HeaderProtocol.Ip, 16, 16, "ip length", ValueDisplay.Decimal);
        public static readonly PayloadField Id = F(HeaderProtocol.Ip, 32, 16, "ip id", ValueDisplay.Decimal);
        public static readonly PayloadField FragOff = F(HeaderProtocol.Ip, 48, 16, "ip frag-off", ValueDisplay.Hex);
        public static readonly PayloadField Ttl = F(HeaderProtocol.Ip, 64, 8, "ip ttl", ValueDisplay.Decimal);
        public static readonly PayloadField Protocol = F(HeaderProtocol.Ip, 72, 8, "ip protocol", ValueDisplay.Decimal);
        public static readonly PayloadField Checksum = F(HeaderProtocol.Ip, 80, 16, "ip checksum", ValueDisplay.Hex);
        public static readonly PayloadField Saddr = F(HeaderProtocol.Ip, 96, 32, "ip saddr", ValueDisplay.Ipv4);
        public static readonly PayloadField Daddr = F(HeaderProtocol.Ip, 128, 32, "ip daddr", ValueDisplay.Ipv4);
    }

    public static class Ip6
    {
        public static readonly PayloadField Version = F(HeaderProtocol.Ip6, 0, 4, "ip6 version", ValueDisplay.Decimal);
        public static readonly PayloadField Dscp = F(HeaderProtocol.Ip6, 4, 6, "ip6 dscp", ValueDisplay.Hex);
        public static readonly PayloadField Ecn = F(HeaderProtocol.Ip6, 10, 2, "ip6 ecn", ValueDisplay.Decimal);
        public static readonly PayloadField Flowlabel = F(HeaderProtocol.Ip6, 12, 20, "ip6 flowlabel", ValueDisplay.Hex);
        public static readonly PayloadField Length = F(HeaderProtocol.Ip6, 32, 16, "ip6 length", ValueDisplay.Decimal);
        public static readonly PayloadField Nexthdr = F(HeaderProtocol.Ip6, 48, 8, "ip6 nexthdr", ValueDisplay.Decimal);
        public static readonly PayloadField Hoplimit = F(HeaderProtocol.Ip6, 56, 8, "ip6 hoplimit", ValueDisplay.Decimal);
        public static readonly PayloadField Saddr = F(HeaderProtocol.Ip6, 64, 128, "ip6 saddr", ValueDisplay.Ipv6);
        public static readonly PayloadField Daddr = F(HeaderProtocol.Ip6, 192, 128, "ip6 daddr", ValueDisplay.Ipv6);
    }

    public static class Tcp
    {
        public static readonly PayloadField Sport = F(HeaderProtocol.Tcp, 0, 16, "tcp sport", ValueDisplay.Decimal);
        public static readonly PayloadField Dport = F(HeaderProtocol.Tcp, 16, 16, "tcp dport", ValueDisplay.Decimal);
        public static readonly PayloadField Sequence = F(HeaderProtocol.Tcp, 32, 32, "tcp sequence", ValueDisplay.Decimal);
        public static readonly PayloadField Ackseq = F(HeaderProtocol.Tcp, 64, 32, "tcp ackseq", ValueDisplay.Decimal);
        public static readonly PayloadField Doff = F(HeaderProtocol.Tcp, 96, 4, "tcp doff", ValueDisplay.Decimal);
        public static readonly PayloadField Flags = F(HeaderProtocol.Tcp, 104, 8, "tcp flags", ValueDisplay.Hex);
        public static readonly PayloadField Window = F(HeaderProtocol.Tcp, 112, 16, "tcp window", ValueDisplay.Decimal);
        public static readonly PayloadField Checksum = F(HeaderProtocol.Tcp, 128, 16, "tcp checksum", ValueDisplay.Hex);
        public static readonly PayloadField Urgptr = F(HeaderProtocol.Tcp, 144, 16, "tcp urgptr", ValueDisplay.Decimal);

        /// <summary>TCP flag bits as `tcp flags` values.</summary>
        public const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Psh = 0x08, Ack = 0x10, Urg = 0x20, Ecn = 0x40, Cwr = 0x80;
    }

    public static class Udp
    {
        public static readonly PayloadField Sport = F(HeaderProtocol.Udp, 0, 16, "udp sport", ValueDisplay.Decimal);
        public static readonly PayloadField Dport = F(HeaderProtocol.Udp, 16, 16, "udp dport", ValueDisplay.Decimal);
        public static readonly PayloadField Length = F(HeaderProtocol.Udp, 32, 16, "udp length", ValueDisplay.Decimal);
        public static readonly PayloadField Checksum = F(HeaderProtocol.Udp, 48, 16, "udp checksum", ValueDisplay.Hex);
    }

    public static class Icmp
    {
        public static readonly PayloadField Type = F(HeaderProtocol.Icmp, 0, 8, "icmp type", ValueDisplay.Decimal);
        public static readonly PayloadField Code = F(HeaderProtocol.Icmp, 8, 8, "icmp code", ValueDisplay.Decimal);
        public static readonly PayloadField Checksum = F(HeaderProtocol.Icmp, 16, 16, "icmp checksum", ValueDisplay.Hex);
        public static readonly PayloadField Id = F(HeaderProtocol.Icmp, 32, 16, "icmp id", ValueDisplay.Decimal);
        public static readonly PayloadField Sequence = F(HeaderProtocol.Icmp, 48, 16, "icmp sequence", ValueDisplay.Decimal);
    }

    public static class Icmpv6
    {
        public static readonly PayloadField Type = F(HeaderProtocol.Icmpv6, 0, 8, "icmpv6 type", ValueDisplay.Decimal);
        public static readonly PayloadField Code = F(HeaderProtocol.Icmpv6, 8, 8, "icmpv6 code", ValueDisplay.Decimal);
        public static readonly PayloadField Checksum = F(HeaderProtocol.Icmpv6, 16, 16, "icmpv6 checksum", ValueDisplay.Hex);
        public static readonly PayloadField Id = F(HeaderProtocol.Icmpv6, 32, 16, "icmpv6 id", ValueDisplay.Decimal);
        public static readonly PayloadField Sequence = F(HeaderProtocol.Icmpv6, 48, 16, "icmpv6 sequence", ValueDisplay.Decimal);
    }

    private static readonly Dictionary<(HeaderProtocol, int, int), (string Name, ValueDisplay Display)> Catalog = new();

    private static PayloadField F(HeaderProtocol p, int off, int len, string name, ValueDisplay display)
    {
        lock (Catalog) Catalog[(p, off, len)] = (name, display);
        return new PayloadField(p, PayloadField.BaseOf(p), off, len);
    }

    // Touch every nested class once so the catalog is complete before the first lookup.
    private static readonly bool Initialized = Init();
    private static bool Init()
    {
        _ = Ether.Type; _ = Vlan.Id; _ = Ip.Saddr; _ = Ip6.Saddr; _ = Tcp.Dport; _ = Udp.Dport; _ = Icmp.Type; _ = Icmpv6.Type;
        return true;
    }

    public static string? NameOf(PayloadField f)
    {
        _ = Initialized;
        lock (Catalog) return Catalog.TryGetValue((f.Protocol, f.OffsetBits, f.LengthBits), out var e) ? e.Name : null;
    }

    public static ValueDisplay DisplayOf(PayloadField f)
    {
        _ = Initialized;
        lock (Catalog) return Catalog.TryGetValue((f.Protocol, f.OffsetBits, f.LengthBits), out var e) ? e.Display : ValueDisplay.Hex;
    }
}
