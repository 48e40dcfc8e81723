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

    // `counter name ip saddr map { ... }` (nft_objref with a map): the key is looked up in the object map, whose
    // elements carry the named counter's statement; the statement dispatches on every counter of the table
    // (sorted by name), so an element naming another of them is a map update.
    [Fact]
    public void CounterNameMapLiftsAsAnObjectMapStatementOverTheTablesCounters()
    {
        var t = CorpusLoader.Table("packets", "ip", "objs");
        var slots = new CounterSlots();
        var (r, sets) = (NftLifter.LiftRule(t, "input", CorpusLoader.RuleByComment(t, "counter_map"), slots) is var l ? (l.Rule, l.Sets) : default);
        Assert.True(slots.TryGet(CounterKey.Named(t.Family, "objs", "from-a"), out var a));
        Assert.True(slots.TryGet(CounterKey.Named(t.Family, "objs", "from-b"), out var b));
        var om = Assert.IsType<ObjectMapStatement>(Assert.Single(r.Statements));
        Assert.Equal(new MatchKey(Fields.Ip.Saddr), om.Key);
        Assert.Equal(new Statement[] { new CounterStatement(a), new CounterStatement(b) }, om.Objects.ToArray());
        Assert.Equal(Verdict.Continue, r.Verdict);
        var set = Assert.Single(sets);
        Assert.Equal(om.Map, set.Name);
        Assert.IsType<SetData.Object>(set.Data);
        var byKey = set.Elements.ToDictionary(e => e.Key[0], e => Assert.Single(e.Statements));
        Assert.Equal(new CounterStatement(a), byKey[new KeyPart.Exact(Value.Ipv4("198.19.0.10"))]);
        Assert.Equal(new CounterStatement(b), byKey[new KeyPart.Exact(Value.Ipv4("198.19.0.11"))]);
    }

    [Fact]
    public void AWholeTableLiftKeepsTheSlotOfEveryCounterTheMapMayNameAndAnElementNamingNoObjectIsRefused()
    {
        var t = CorpusLoader.Table("packets", "ip", "objs");
        var result = NftLifter.LiftTable(t);
        Assert.Empty(result.Refusals);
        Assert.True(result.Counters.ContainsKey(CounterKey.Named(t.Family, "objs", "from-a")));
        Assert.True(result.Counters.ContainsKey(CounterKey.Named(t.Family, "objs", "from-b")));
        // an element naming an object the table does not hold (as a stale element could) is refused by set name
        var map = t.Sets.Single(s => s.Set.ObjType != null);
        var broken = t with
        {
            Sets = [new SourceSet(map.Set, [.. map.Elements.Take(1), map.Elements[1] with { ObjRef = "nowhere" }])],
        };
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(broken));
        Assert.Contains("set '__objmap0' has an element naming no object of the table", e.Reason);
    }
}
