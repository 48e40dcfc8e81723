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
        Assert.Equal("set ip vm/__map0 { type ip saddr : verdict; elements = { 198.19.0.66 : drop, 198.19.0.67 : accept } }",
            Assert.Single(sets).ToString());
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
}
