using Bpfilter.Backend.Ir;

namespace Nft.Lifter.Tests;

/// <summary>
/// Rulesets of the packet corpus (integration/corpus/packets) from Corpus/packets.nft (kernel dump):
/// verdict maps followed by statements, VLAN and pkttype at netdev ingress, concatenations, extension headers.
/// </summary>
public class PacketCorpusLiftTests
{
    static (Rule Rule, IReadOnlyList<Set> Sets) Lift(string family, string table, string comment)
    {
        var t = CorpusLoader.Table("packets", family, table);
        var rule = CorpusLoader.RuleByComment(t, comment);
        var l = NftLifter.LiftRule(t, CorpusLoader.ChainOf(t, rule), rule);
        return (l.Rule, l.Sets);
    }

    static LiftException Refused(string family, string table, string comment)
    {
        var t = CorpusLoader.Table("packets", family, table);
        var rule = CorpusLoader.RuleByComment(t, comment);
        return Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, CorpusLoader.ChainOf(t, rule), rule));
    }

    // `ip saddr vmap {...} counter`: the kernel (checked in a netns with real packets) ends the rule at the
    // lookup, a miss with NFT_BREAK and a hit with the element's verdict, so the counter never counts: the
    // rule has no counter slot and its counter stays at zero as in the kernel's listing.
    [Fact]
    public void CounterAfterVerdictMapNeverCounts()
    {
        var (r, sets) = Lift("ip", "vm", "vmap_counter");
        Assert.Equal("ip saddr vmap @ip vm/__map0", r.ToString());
        Assert.Null(r.CounterId);
        var set = Assert.Single(sets);
        Assert.Equal("ip vm/__map0", set.Name);
        Assert.Equal(2, set.Elements.Count);
        Assert.Contains("198.19.0.66 : drop", set.ToString()); // element order is the kernel's hash order
        Assert.Contains("198.19.0.67 : accept", set.ToString());
    }

    [Fact]
    public void CounterBeforeVerdictMapCountsEveryPacketReachingIt()
    {
        var (r, _) = Lift("ip", "vm", "counter_vmap");
        Assert.Equal("counter #0 ip saddr vmap @ip vm/__map2", r.ToString());
        Assert.NotNull(r.CounterId);
    }

    // a `continue` element would run the trailing counter (the kernel counts exactly those packets): refused
    [Fact]
    public void ContinueElementBeforeATrailingCounterIsRefused()
    {
        var e = Refused("ip", "vm", "continue_vmap_counter");
        Assert.Contains("maps to verdict continue", e.Reason);
    }

    // the listing reports each counter expression separately; one slot per rule cannot hold both
    [Fact]
    public void CountersOnBothSidesOfAVerdictMapAreRefused()
    {
        var e = Refused("ip", "vm", "counter_vmap_counter");
        Assert.Contains("counter after a verdict map", e.Reason);
        Assert.Equal(3, e.ExpressionIndex);
    }

    // at netdev ingress the kernel has untagged the frame: the network header follows the 802.1Q tag and nft's
    // `vlan type ip` dependency is the EtherType the IR's ip fields imply (ether type 8021q: implied by vlan id)
    [Theory]
    [InlineData("vlan_ip_saddr", "vlan id == 20 ip saddr == 198.19.0.2 counter #0 drop")]
    [InlineData("vlan_type", "vlan type == 0x86dd counter #0 continue")]
    [InlineData("vlan_pcp", "vlan id == 0 vlan pcp == 5 counter #0 drop")]
    [InlineData("vlan_tcp_dport", "vlan id == 20 tcp dport == 22 counter #0 drop")]
    public void VlanAtNetdevIngress(string comment, string lifted) =>
        Assert.Equal(lifted, Lift("netdev", "edge", comment).Rule.ToString());

    // refused, with the statement named: IPv4 options are answered after the kernel validates the whole option
    // list; IPv6 headers are found by an unbounded walk the BPF prologue (8 headers) cannot match exactly
    [Theory]
    [InlineData("ip", "opt", "ip_option_rr", 0, "(ip option rr exists)", "__ip_options_compile")]
    [InlineData("ip", "opt", "ip_option_ra", 0, "(ip option ra exists)", "__ip_options_compile")]
    [InlineData("ip6", "x6", "hbh_exists", 0, "(exthdr hbh exists)", "ipv6_find_hdr")]
    [InlineData("ip6", "x6", "rt_type", 0, "(exthdr rt @ offset 2, 1 byte(s))", "ipv6_find_hdr")]
    [InlineData("ip6", "x6", "dst_exists", 0, "(exthdr dst exists)", "ipv6_find_hdr")]
    [InlineData("ip6", "x6", "frag_exists", 0, "(exthdr frag exists)", "ipv6_find_hdr")]
    [InlineData("ip6", "x6", "frag_mf", 0, "(exthdr frag @ offset 3, 1 byte(s))", "ipv6_find_hdr")]
    public void ExtensionHeaderMatchesAreRefusedByName(string family, string table, string comment, int index, string what, string why)
    {
        var e = Refused(family, table, comment);
        Assert.StartsWith($"expression 'exthdr' {what} is not supported by bpfilter-nft: ", e.Reason);
        Assert.Contains(why, e.Reason);
        Assert.Equal(index, e.ExpressionIndex);
    }

    [Fact]
    public void CounterNameMapIsRefusedByName()
    {
        var e = Refused("ip", "objs", "counter_map");
        Assert.Contains("expression 'objref' (a named object chosen per packet through object map '__objmap", e.Reason);
        Assert.Contains("counter name ... map", e.Reason);
        Assert.Equal(1, e.ExpressionIndex);
    }
}
