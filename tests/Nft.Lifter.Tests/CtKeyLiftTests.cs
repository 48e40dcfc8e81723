using Bpfilter.Backend.Ir;
using Nft.Netlink;

namespace Nft.Lifter.Tests;

/// <summary>
/// ct keys of the entry and its tuples from Corpus/ct_keys.nft (kernel dump): l3proto, protocol, addresses
/// (ip, ip6 and the family-dependent saddr/daddr, with prefixes), ports, expiration and zone per direction,
/// in matches, sets and maps, the label bits, and the family-dependent address over more than 4 bytes after
/// `ct l3proto ipv6`; that address without it, helper and bytes are refused naming the key.
/// </summary>
public class CtKeyLiftTests
{
    [Theory]
    [InlineData("ip", "k4", "saddr", "ct original saddr == 198.19.61.7 accept")]
    [InlineData("ip", "k4", "reply_daddr_ne", "ct reply daddr != 198.19.61.7 accept")]
    [InlineData("ip", "k4", "daddr_prefix", "ct original daddr 198.18.2.0/24 accept")]
    [InlineData("ip", "k4", "daddr_mask", "ct original daddr 198.18.0.0/23 accept")]
    [InlineData("ip", "k4", "ip_saddr_prefix", "ct original ip saddr 198.19.61.0/24 accept")]
    [InlineData("ip", "k4", "ip_daddr_range", "ct reply ip daddr 198.19.61.7-198.19.61.9 accept")]
    [InlineData("ip", "k4", "l3proto", "ct l3proto == 2 accept")]
    // the kernel ignores a direction on l3proto and protocol
    [InlineData("ip", "k4", "l3proto_dir", "ct l3proto == 2 accept")]
    [InlineData("ip", "k4", "protocol", "ct protocol == 6 accept")]
    [InlineData("ip", "k4", "proto_src_range", "meta l4proto == 6 ct original proto-src 41000-41005 accept")]
    [InlineData("ip", "k4", "reply_proto_dst", "meta l4proto == 17 ct reply proto-dst == 53 accept")]
    // ICMP: the tuple's destination "port" is the type and code (echo request: 8, 0)
    [InlineData("ip", "k4", "icmp_proto_dst", "meta l4proto == 1 ct original proto-dst == 2048 accept")]
    // expiration is a host-order u32 that nft turns to network order (byteorder hton) before comparing
    [InlineData("ip", "k4", "expiration_gt", "ct expiration > 1000 accept")]
    [InlineData("ip", "k4", "expiration_eq", "ct expiration == 5000 accept")]
    [InlineData("ip", "k4", "original_zone", "ct original zone == 3 accept")]
    [InlineData("ip", "k4", "reply_zone", "ct reply zone == 0 accept")]
    // label 1: bit 1 of the first byte of the 16 nft loads; `ct label 1` is a bitwise and then != 0
    [InlineData("ip", "k4", "label", "ct label & 0x02000000000000000000000000000000 != 0x00000000000000000000000000000000 accept")]
    [InlineData("ip6", "k6", "ip6_daddr", "ct original ip6 daddr == 2001:db8:2::2 accept")]
    [InlineData("ip6", "k6", "ip6_saddr_ne", "ct reply ip6 saddr != 2001:db8:2::2 accept")]
    [InlineData("ip6", "k6", "ip6_saddr_prefix", "ct original ip6 saddr 2001:db8:ff::/48 accept")]
    [InlineData("ip6", "k6", "icmp6_proto_dst", "meta l4proto == 58 ct original proto-dst == 32768 accept")]
    // inet: the family-dependent address is a 16-byte register; nft compares 4 bytes of it for IPv4
    [InlineData("inet", "k", "inet_saddr4", "meta nfproto == 2 ct original saddr == 198.19.61.7 accept")]
    [InlineData("inet", "k", "inet_saddr4_prefix", "meta nfproto == 2 ct original saddr 198.19.61.0/24 accept")]
    [InlineData("inet", "k", "inet_ip_saddr", "ct original ip saddr == 198.19.61.7 accept")]
    [InlineData("inet", "k", "inet_ip6_daddr", "ct reply ip6 daddr == 2001:db8:ff::1 accept")]
    [InlineData("inet", "k", "inet_l3proto", "ct l3proto == 10 accept")]
    // the family-dependent address over 16 (or 6) bytes after `ct l3proto ipv6`: the entry is IPv6, all 16 bytes are its
    [InlineData("ip6", "k6", "l3proto_saddr6", "ct l3proto == 10 ct original ip6 saddr == 2001:db8:ff::1 accept")]
    [InlineData("ip6", "k6", "l3proto_daddr6_ne", "ct l3proto == 10 ct reply ip6 daddr != 2001:db8:ff::1 accept")]
    [InlineData("ip6", "k6", "l3proto_saddr6_prefix", "ct l3proto == 10 ct original ip6 saddr 2001:db8:ff::/48 accept")]
    [InlineData("inet", "k", "inet_l3proto_saddr6", "ct l3proto == 10 ct original ip6 saddr == 2001:db8:ff::1 accept")]
    [InlineData("inet", "k", "inet_l3proto_saddr4", "ct l3proto == 2 ct original saddr == 198.19.61.7 accept")]
    public void LiftsCtKey(string family, string table, string comment, string expected)
    {
        var t = CorpusLoader.Table("ct_keys", family, table);
        var rule = CorpusLoader.RuleByComment(t, comment);
        var lifted = NftLifter.LiftRule(t, CorpusLoader.ChainOf(t, rule), rule);
        Assert.Equal(expected, lifted.Rule.ToString());
    }

    [Fact]
    public void ConcatenationSetKeyReadsBothTupleKeys()
    {
        var t = CorpusLoader.Table("ct_keys", "ip", "k4");
        var lifted = NftLifter.LiftRule(t, "c", CorpusLoader.RuleByComment(t, "concat_set"));
        var set = Assert.Single(lifted.Sets);
        Assert.Equal([new CtField(CtReadKey.SrcIp, CtDirection.Original), new CtField(CtReadKey.ProtoDst, CtDirection.Original)],
            set.Key.Fields.ToArray());
        var key = Assert.Single(set.Elements).Key;
        Assert.Equal(new byte[] { 198, 19, 61, 7 }, ((KeyPart.Exact)key[0]).Value.Bytes.ToArray());
        Assert.Equal(new byte[] { 0, 80 }, ((KeyPart.Exact)key[1]).Value.Bytes.ToArray());
    }

    [Fact]
    public void ProtocolVerdictMapHoldsProtocolNumbers()
    {
        var t = CorpusLoader.Table("ct_keys", "ip", "k4");
        var lifted = NftLifter.LiftRule(t, "c", CorpusLoader.RuleByComment(t, "protocol_vmap"));
        var set = Assert.Single(lifted.Sets);
        Assert.Equal(new CtField(CtReadKey.Protocol), Assert.Single(set.Key.Fields));
        Assert.Equal([6ul, 17ul], set.Elements.Select(e => ((KeyPart.Exact)e.Key[0]).Value.ToUInt64()).Order());
    }

    [Fact]
    public void IntervalSetOfTupleAddresses()
    {
        var t = CorpusLoader.Table("ct_keys", "ip", "k4");
        var lifted = NftLifter.LiftRule(t, "c", CorpusLoader.RuleByComment(t, "saddr_interval_set"));
        var set = Assert.Single(lifted.Sets);
        Assert.Equal(new CtField(CtReadKey.SrcIp, CtDirection.Original), Assert.Single(set.Key.Fields));
        Assert.Equal(2, set.Elements.Count);
    }

    const string NotSupported = " is not supported by bpfilter-nft";

    [Theory]
    // the family-dependent address of an ip6 table: a 16-byte compare the kernel leaves undefined for an IPv4 entry
    [InlineData("ip6", "k6", "saddr6", "compares 16 bytes of ct original saddr: bpfilter-nft reads only its first 4")]
    [InlineData("ip6", "k6", "saddr6_prefix", "compares 6 bytes of ct original saddr: bpfilter-nft reads only its first 4")]
    [InlineData("inet", "k", "inet_saddr6", "compares 16 bytes of ct original saddr: bpfilter-nft reads only its first 4")]
    // `ct l3proto ipv6` after the compare: a counter or the like in between could see the undefined compare
    [InlineData("ip6", "k6", "saddr6_l3proto_after", "compares 16 bytes of ct original saddr: bpfilter-nft reads only its first 4")]
    [InlineData("ip", "k4", "helper", "expression 'ct helper'" + NotSupported + " (only ct state")]
    [InlineData("ip", "k4", "bytes", "expression 'ct bytes'" + NotSupported + " (only ct state")]
    public void RefusesOtherForms(string family, string table, string comment, string reason)
    {
        var t = CorpusLoader.Table("ct_keys", family, table);
        var rule = CorpusLoader.RuleByComment(t, comment);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "c", rule));
        Assert.StartsWith(reason, e.Reason);
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
    }
}
