using Bpfilter.Backend.Ir;

namespace Nft.Lifter.Tests;

/// <summary>
/// Set lookups, intervals, concatenations and verdict maps from Corpus/sets.nft (kernel dump): the lifted
/// rule and the IR set it reads, elements included.
/// </summary>
public class SetLiftTests
{
    static (Rule Rule, IReadOnlyList<Set> Sets) Lift(string comment)
    {
        var t = CorpusLoader.Table("sets", "inet", "s");
        var rule = CorpusLoader.RuleByComment(t, comment);
        var l = NftLifter.LiftRule(t, CorpusLoader.ChainOf(t, rule), rule);
        return (l.Rule, l.Sets);
    }

    [Theory]
    [InlineData("named_set", "ip saddr @inet s/blk4 drop",
        "set inet s/blk4 { type ip saddr; elements = { 192.0.2.7, 10.0.0.1, 10.0.0.2 } }")]
    [InlineData("named_set_again", "ip daddr @inet s/blk4 drop",
        "set inet s/blk4 { type ip daddr; elements = { 192.0.2.7, 10.0.0.1, 10.0.0.2 } }")]
    [InlineData("named_set_inv", "ip saddr != @inet s/blk4 accept",
        "set inet s/blk4 { type ip saddr; elements = { 192.0.2.7, 10.0.0.1, 10.0.0.2 } }")]
    [InlineData("named_interval", "ip saddr @inet s/nets accept",
        "set inet s/nets { type ip saddr; elements = { 10.0.0.0/8, 172.16.1.1-172.16.1.9, 192.168.0.0/16 } }")]
    [InlineData("named_concat", "ip saddr . tcp dport @inet s/svc accept",
        "set inet s/svc { type ip saddr . tcp dport; elements = { 10.0.0.2 . 443, 10.0.0.1 . 22 } }")]
    [InlineData("named_concat_interval", "ip saddr . tcp dport @inet s/svcr accept",
        "set inet s/svcr { type ip saddr . tcp dport; elements = { 10.0.0.0/8 . 1000-2000, 192.168.1.1 . 22 } }")]
    [InlineData("named_ip6_interval", "ip6 saddr @inet s/blk6 accept",
        "set inet s/blk6 { type ip6 saddr; elements = { ::1, 2001:db8::/32 } }")]
    [InlineData("empty_set", "ip daddr @inet s/empty drop",
        "set inet s/empty { type ip daddr; elements = {  } }")]
    [InlineData("named_vmap", "tcp dport vmap @inet s/portmap",
        "set inet s/portmap { type tcp dport : verdict; elements = { 22 : accept, 82 : return, 81 : goto inet s/web, 80 : jump inet s/web, 23 : drop } }")]
    [InlineData("named_interval_vmap", "ip saddr vmap @inet s/netmap",
        "set inet s/netmap { type ip saddr : verdict; elements = { 10.0.0.0/8 : accept, 192.168.0.0/16 : drop } }")]
    [InlineData("anon_ports", "tcp dport @inet s/__set0 accept",
        "set inet s/__set0 { type tcp dport; elements = { 22, 80, 443 } }")]
    [InlineData("anon_port_intervals", "tcp dport @inet s/__set1 accept",
        "set inet s/__set1 { type tcp dport; elements = { 1-1023, 8080 } }")]
    [InlineData("anon_adjacent", "ip saddr @inet s/__set2 drop",
        "set inet s/__set2 { type ip saddr; elements = { 0.0.0.0/8, 10.0.0.0/23 } }")]
    [InlineData("anon_ip6", "ip6 saddr @inet s/__set3 accept",
        "set inet s/__set3 { type ip6 saddr; elements = { ::1, fe80::/10 } }")]
    [InlineData("anon_mark", "meta mark @inet s/__set4 accept",
        "set inet s/__set4 { type meta mark; elements = { 0x00000100, 0x00000001 } }")]
    [InlineData("anon_iifname", "meta iifname @inet s/__set5 accept",
        "set inet s/__set5 { type meta iifname; elements = { \"lift0\", \"lo\" } }")]
    [InlineData("anon_dscp", "ip dscp @inet s/__set6 accept",
        "set inet s/__set6 { type ip dscp; elements = { 0x2e, 0x0a } }")]
    [InlineData("anon_l4proto", "meta l4proto @inet s/__set7 accept",
        "set inet s/__set7 { type meta l4proto; elements = { 6, 17 } }")]
    [InlineData("anon_tcpflags", "tcp flags @inet s/__set8 accept",
        "set inet s/__set8 { type tcp flags; elements = { 0x02, 0x12 } }")]
    [InlineData("anon_vmap", "udp dport vmap @inet s/__map0",
        "set inet s/__map0 { type udp dport : verdict; elements = { 123 : drop, 53 : accept } }")]
    [InlineData("anon_concat3", "ip saddr . ip daddr . tcp dport @inet s/__set9 accept",
        "set inet s/__set9 { type ip saddr . ip daddr . tcp dport; elements = { 1.1.1.1 . 2.2.2.2 . 22 } }")]
    [InlineData("anon_inv", "ip daddr != @inet s/__set10 accept",
        "set inet s/__set10 { type ip daddr; elements = { 10.0.0.3, 10.0.0.1 } }")]
    [InlineData("counter_vmap", "counter #0 tcp dport vmap @inet s/__map1",
        "set inet s/__map1 { type tcp dport : verdict; elements = { 8000 : accept } }")]
    public void LiftsLookup(string comment, string rule, string set)
    {
        var (r, sets) = Lift(comment);
        Assert.Equal(rule, r.ToString());
        Assert.Equal(set, Assert.Single(sets).ToString());
    }

    [Fact]
    public void SingleIntervalBecomesRange()
    {
        // nft turns a one-interval anonymous set into a range expression
        var (r, sets) = Lift("anon_open_end");
        Assert.Equal("ip saddr 200.0.0.0-255.255.255.255 drop", r.ToString());
        Assert.Empty(sets);
    }

    [Fact]
    public void IntervalElementsAreInclusiveRangesAndPrefixes()
    {
        var (_, sets) = Lift("named_interval");
        var e = sets[0].Elements.Select(x => Assert.Single(x.Key)).ToList();
        Assert.Equal(new KeyPart.Prefix(Value.Ipv4("10.0.0.0"), 8), e[0]);
        Assert.Equal(new KeyPart.Range(Value.Ipv4("172.16.1.1"), Value.Ipv4("172.16.1.9")), e[1]);
        Assert.Equal(new KeyPart.Prefix(Value.Ipv4("192.168.0.0"), 16), e[2]);
    }

    [Fact]
    public void MaskedSetKeyElementsAreShiftedIntoTheField()
    {
        var (r, sets) = Lift("anon_dscp");
        Assert.Equal(new MatchKey(Fields.Ip.Dscp), r.Matchers[0].Key);
        Assert.Equal([Value.FromBytes(0x2e), Value.FromBytes(0x0a)],
            sets[0].Elements.Select(x => ((KeyPart.Exact)x.Key[0]).Value).ToArray());
    }

    [Fact]
    public void ConcatenationSplitsPaddedRegisters()
    {
        var (_, sets) = Lift("named_concat");
        var e = sets[0].Elements.Single(x => x.Key[1] == new KeyPart.Exact(Value.FromUInt(22, 16)));
        Assert.Equal(new KeyPart.Exact(Value.Ipv4("10.0.0.1")), e.Key[0]);
        Assert.Equal(new MatchKey(Fields.Ip.Saddr, Lifted.TcpDport), sets[0].Key);
    }

    [Fact]
    public void VmapElementsCarryVerdicts()
    {
        var (r, sets) = Lift("named_vmap");
        Assert.Equal(Verdict.VMap(new MatchKey(Lifted.TcpDport), "inet s/portmap"), r.Verdict);
        Assert.Empty(r.Matchers); // the l4proto dependency is implied by the vmap key
        Assert.True(sets[0].IsMap);
        var byPort = sets[0].Elements.ToDictionary(x => ((KeyPart.Exact)x.Key[0]).Value.ToUInt64(), x => x.Verdict);
        Assert.Equal(Verdict.Jump("inet s/web"), byPort[80]);
        Assert.Equal(Verdict.Goto("inet s/web"), byPort[81]);
        Assert.Equal(Verdict.Return, byPort[82]);
    }

    [Fact]
    public void WholeTableListsEachUsedSetOnceAndSkipsUnusedOnes()
    {
        var r = NftLifter.LiftTable(CorpusLoader.Table("sets", "inet", "s"));
        var names = r.Ruleset.Sets.Select(s => s.Name).ToList();
        Assert.Equal(names.Distinct().Count(), names.Count);
        Assert.Contains("inet s/blk4", names);
        Assert.DoesNotContain("inet s/unused", names);
        Assert.Equal("inet s/blk4", r.SetNames[(Nft.Bytecode.NfProto.Inet, "s", "blk4")]);
        Assert.False(r.SetNames.ContainsKey((Nft.Bytecode.NfProto.Inet, "s", "unused")));
        // the set takes the key of its first use; the second use (ip daddr) reads the same layout
        Assert.Equal(new MatchKey(Fields.Ip.Saddr), r.Ruleset.FindSet("inet s/blk4")!.Key);
    }

    static SourceTable ReplaceRule(SourceTable t, string comment, Func<Nft.Bytecode.Objects.Rule, Nft.Bytecode.Objects.Rule> edit)
    {
        var old = CorpusLoader.RuleByComment(t, comment);
        return t with
        {
            Chains = t.Chains.Select(c => c with { Rules = c.Rules.Select(r => r == old ? edit(r) : r).ToList() }).ToList(),
        };
    }

    [Fact]
    public void OneSetReadThroughTwoLayoutsIsRefused()
    {
        // `ip daddr @blk4` edited to load two bytes: the set's elements cannot be converted both ways
        var t = ReplaceRule(CorpusLoader.Table("sets", "inet", "s"), "named_set_again", r =>
        {
            var e = r.Expressions!.ToList();
            var i = e.FindIndex(x => x is Nft.Bytecode.Expressions.PayloadExpr);
            e[i] = ((Nft.Bytecode.Expressions.PayloadExpr)e[i]) with { Len = 2 };
            return r with { Expressions = e };
        });
        var x = Assert.Throws<LiftException>(() => NftLifter.LiftTable(t));
        Assert.Equal(CorpusLoader.RuleByComment(t, "named_set_again").Handle, x.RuleHandle);
        Assert.StartsWith("set 'blk4' is used with keys of different layouts", x.Reason);
    }

    [Fact]
    public void ElementTheKeyCannotHoldIsRefused()
    {
        // a dscp set element with the two low (ecn) bits set: the masked load never holds it
        var t = CorpusLoader.Table("sets", "inet", "s");
        var rule = CorpusLoader.RuleByComment(t, "anon_dscp");
        var setName = rule.Expressions!.OfType<Nft.Bytecode.Expressions.LookupExpr>().Single().Set;
        var bad = t with
        {
            Sets = t.Sets.Select(s => s.Name != setName ? s : s with
            {
                Elements = [.. s.Elements, new Nft.Bytecode.Objects.SetElement { Key = new Nft.Bytecode.Data.ValueData([0xb9]) }],
            }).ToList(),
        };
        var x = Assert.Throws<LiftException>(() => NftLifter.LiftRule(bad, "in", rule));
        Assert.Equal((setName, rule.Handle), (x.Set, x.RuleHandle));
        Assert.Contains("has element 0xb9 that the key 'ip dscp' can never hold", x.Reason);
    }
}
