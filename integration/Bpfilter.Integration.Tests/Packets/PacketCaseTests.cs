namespace Bpfilter.Integration.Tests.Packets;

/// <summary>The case file format's directives (README of corpus/packets), parsed from text.</summary>
public class PacketCaseTests
{
    const string Body = "ruleset <<EOF\ntable ip t {\n}\nEOF\npacket p from peer expect pass: ip4 src=198.19.0.1 dst=198.18.1.1 / udp\n";

    [Fact]
    public void DaemonRefusesIsReadWithItsText()
    {
        var c = PacketCase.Parse("x", "daemon-refuses \"expression 'exthdr' (ip option rr exists)\"\n" + Body, "x.nft");
        Assert.Equal("expression 'exthdr' (ip option rr exists)", c.DaemonRefuses);
        Assert.Single(c.Packets);
        Assert.Null(PacketCase.Parse("y", Body, "y.nft").DaemonRefuses);
    }

    [Fact]
    public void KernelRulesetIsReadWithItsTables()
    {
        var c = PacketCase.Parse("x", "kernel-ruleset <<END\ntable inet labeller {\n\tchain pre {\n\t}\n}\ntable ip6 other {\n}\nEND\n" + Body, "x.nft");
        Assert.Equal("table inet labeller {\n\tchain pre {\n\t}\n}\ntable ip6 other {\n}\n", c.KernelRuleset);
        Assert.Equal([["inet", "labeller"], ["ip6", "other"]], c.KernelTables);
        Assert.Equal("table ip t {\n}\n", c.Ruleset);
        Assert.Null(PacketCase.Parse("y", Body, "y.nft").KernelRuleset);
        var e = Assert.Throws<FormatException>(() => PacketCase.Parse("z", "kernel-ruleset <<A\nA\nkernel-ruleset <<B\nB\n" + Body, "z.nft"));
        Assert.Contains("a second kernel-ruleset", e.Message);
    }

    [Theory]
    [InlineData("daemon-refuses exthdr\n")]
    [InlineData("daemon-refuses \"\"\n")]
    [InlineData("daemon-refuses \"a\"b\"\n")]
    [InlineData("daemon-refuses \"a\"\ndaemon-refuses \"b\"\n")]
    public void MalformedOrRepeatedDaemonRefusesIsAnError(string directive)
    {
        var e = Assert.Throws<FormatException>(() => PacketCase.Parse("x", directive + Body, "x.nft"));
        Assert.Contains("daemon-refuses", e.Message);
    }
}

/// <summary>The directives of the rulesets corpus (topology, route, rule, arrives at), parsed from text.</summary>
public class RulesetDirectiveTests
{
    const string Ruleset = "ruleset <<EOF\ntable ip t {\n}\nEOF\n";

    [Fact]
    public void RoutesRulesAndTopologyAreRead()
    {
        var c = PacketCase.Parse("x", "route 198.19.1.0/24 via peer\nroute 0.0.0.0/0 via back table 101\nroute 2001:db8:ff:1::/64 via peer\n" +
            "rule fwmark 0x2 table 102\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n", "x.nft");
        Assert.Equal(TopologyKind.Routed, c.Topology);
        Assert.Equal(3, c.Routes.Count);
        Assert.Equal(("198.19.1.0/24", Origin.Peer, (int?)null), (c.Routes[0].Prefix, c.Routes[0].Via, c.Routes[0].Table));
        Assert.Equal(101, c.Routes[1].Table);
        Assert.False(c.Routes[2].IsV4);
        Assert.Equal(new CaseRule(2, 102), Assert.Single(c.Rules));
        Assert.Equal(TopologyKind.Bridge, PacketCase.Parse("y", "topology bridge\n" + Ruleset +
            "packet p from peer expect pass: ip4 src=198.18.1.2 dst=198.18.2.2 / udp\n", "y.nft").Topology);
    }

    [Fact]
    public void ArrivesBelongsToThePacketBefore()
    {
        var c = PacketCase.Parse("x", Ruleset +
            "packet a from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / tcp sport=1 dport=2\narrives at back: ip4 src=198.18.2.1 / tcp sport=3\n" +
            "packet b from peer expect pass: ip4 src=198.19.1.1 dst=10.1.1.1 / udp\narrives at peer\n" +
            "packet c from peer expect drop: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n", "x.nft");
        Assert.Equal(Observation.Back, c.Packets[0].ArrivesAt);
        Assert.Equal(["ip4", "tcp"], c.Packets[0].ArrivesAs.Select(l => l.Kind));
        Assert.Equal(Observation.Peer, c.Packets[1].ArrivesAt);
        Assert.Empty(c.Packets[1].ArrivesAs);
        Assert.Null(c.Packets[2].ArrivesAt);
    }

    [Theory]
    [InlineData("arrives at back\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n")]
    [InlineData(Ruleset + "packet p from peer expect drop: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\narrives at back\n")]
    [InlineData(Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\narrives at back: tcp sport=1\n")]
    [InlineData(Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\narrives at back\narrives at peer\n")]
    [InlineData(Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\narrives at nowhere\n")]
    [InlineData("route 198.19.1.0/33 via peer\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n")]
    [InlineData("route 198.19.1.0/24 via fw\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n")]
    [InlineData("rule fwmark 1 table 254\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n")]
    [InlineData("topology mesh\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n")]
    [InlineData("topology bridge\nroute 198.19.1.0/24 via peer\n" + Ruleset + "packet p from peer expect pass: ip4 src=198.19.1.1 dst=198.18.2.2 / udp\n")]
    public void MalformedDirectivesAreErrors(string text) =>
        Assert.Throws<FormatException>(() => PacketCase.Parse("x", text, "x.nft"));

    [Fact]
    public void ExpiresIsComparedToTheMinute()
    {
        Assert.Equal("{ 1.2.3.4 timeout 4h expires 3h59m~ }", Listing.Comparable("{ 1.2.3.4 timeout 4h expires 3h59m58s740ms }"));
        Assert.Equal("expires 2d23h~, expires <1m~", Listing.Comparable("expires 2d23h0s5ms, expires 59s999ms"));
        Assert.Equal("counter packets 1 bytes 60", Listing.Comparable("counter packets 1 bytes 60"));
    }
}
