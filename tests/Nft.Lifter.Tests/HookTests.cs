using Bpfilter.Backend.Ir;

namespace Nft.Lifter.Tests;

/// <summary>
/// Base chains at every supported hook, regular chains, policies and counter slots, from
/// Corpus/hooks.nft (kernel dump), lifted as one namespace.
/// </summary>
public class HookTests
{
    static LiftResult Lift(CounterSlots? slots = null) => NftLifter.Lift(CorpusLoader.Load("hooks"), slots);

    [Fact]
    public void LiftsTheWholeNamespace()
    {
        const string expected = """
            set ip6 t6/__set0 { type icmpv6 type; elements = { 135, 136 } }
            chain netdev nd/ing (xdp ingress device lift0, priority -100) {
                ether type == 0x0806 accept
                ip saddr 198.18.0.0/15 counter #0 accept
                policy drop
            }
            chain netdev nd/both@lift1 (xdp ingress device lift1, priority 5) {
                vlan id == 7 jump netdev nd/tagged
                policy accept
            }
            chain netdev nd/both@lift0 (xdp ingress device lift0, priority 5) {
                vlan id == 7 jump netdev nd/tagged
                policy accept
            }
            chain netdev nd/egr (tc egress device lift0, priority 0) {
                ip daddr == 10.9.9.9 drop
                policy accept
            }
            chain inet f/in (netfilter inet input priority 0, priority 0) {
                tcp dport == 22 counter #1 jump inet f/ssh
                meta iifname == "lo" accept
                policy drop
            }
            chain inet f/fw (netfilter inet forward priority -150, priority -150) {
                policy accept
            }
            chain inet f/out (netfilter inet output priority 10, priority 10) {
                meta oifname == "lift0" udp dport == 53 accept
                policy accept
            }
            chain inet f/pre (netfilter inet prerouting priority -300, priority -300) {
                policy accept
            }
            chain inet f/post (netfilter inet postrouting priority 100, priority 100) {
                policy accept
            }
            chain inet f/ing (xdp ingress device lift1 ip-only, priority 0) {
                ether saddr == 02:00:00:00:00:01 drop
                ip6 saddr fe80::/10 accept
                policy accept
            }
            chain ip t4/in (netfilter ipv4 input priority 10, priority 10) {
                icmp type == 8 counter #3 drop
                policy accept
            }
            chain ip6 t6/out (netfilter ipv6 output priority -10, priority -10) {
                icmpv6 type @ip6 t6/__set0 accept
                policy drop
            }
            chain netdev nd/tagged {
                vlan pcp == 1 drop
            }
            chain inet f/ssh {
                ip saddr 10.0.0.0/8 return
                counter #2 goto inet f/deny
            }
            chain inet f/deny {
                drop
            }

            """;
        Assert.Equal(expected.Replace("\r", ""), Lift().Ruleset.ToString());
    }

    [Fact]
    public void MapsHooks()
    {
        var rs = Lift().Ruleset;
        BaseChain Chain(string n) => rs.BaseChains.Single(c => c.Name == n);
        Assert.Equal(new XdpIngress("lift0"), Chain("netdev nd/ing").Hook);
        Assert.Equal(new TcEgress("lift0"), Chain("netdev nd/egr").Hook);
        Assert.Equal(new XdpIngress("lift1", IpOnly: true), Chain("inet f/ing").Hook);
        Assert.Equal(new NetfilterHook(NfFamily.Inet, NfHookPoint.Forward, -150), Chain("inet f/fw").Hook);
        Assert.Equal(new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 10), Chain("ip t4/in").Hook);
        Assert.Equal(new NetfilterHook(NfFamily.Ipv6, NfHookPoint.Output, -10), Chain("ip6 t6/out").Hook);
        Assert.Equal(Verdict.Drop, Chain("netdev nd/ing").Policy);
        Assert.Equal(-100, Chain("netdev nd/ing").Priority);
        // one chain on two devices: one base chain per device, same rules
        Assert.Equal(Chain("netdev nd/both@lift0").Rules, Chain("netdev nd/both@lift1").Rules);
    }

    [Fact]
    public void DormantTablesAndBridgeRegularChainsEnforceNothing()
    {
        var rs = Lift().Ruleset;
        Assert.DoesNotContain(rs.BaseChains, c => c.Name.StartsWith("inet dorm/"));
        Assert.DoesNotContain(rs.Chains, c => c.Name.StartsWith("bridge quiet/"));
    }

    [Fact]
    public void CounterSlotsAreExposedAndStable()
    {
        var slots = new CounterSlots();
        var first = Lift(slots);
        var t = CorpusLoader.Table("hooks", "inet", "f");
        var ssh = t.FindChain("ssh")!.Rules[1];
        var key = new CounterKey(Nft.Bytecode.NfProto.Inet, "f", "ssh", ssh.Handle!.Value);
        Assert.Equal(4, first.Counters.Count);
        Assert.Equal(first.Ruleset.FindChain("inet f/ssh")!.Rules[1].CounterId, first.Counters[key]);
        // lifting again with the same slots keeps every id
        var again = Lift(slots);
        Assert.Equal(first.Counters, again.Counters);
        // a slot freed by a deleted rule is reused; the others keep theirs
        slots.Retain(first.Counters.Keys.Where(k => k != key));
        var other = new CounterKey(Nft.Bytecode.NfProto.Ipv4, "x", "y", 99);
        Assert.Equal(first.Counters[key], slots.GetOrAdd(other));
        Assert.All(first.Counters.Where(kv => kv.Key != key), kv => Assert.Equal(kv.Value, slots.Slots[kv.Key]));
    }

    /// <summary>
    /// `icmp type 8 counter quota over 100 bytes counter drop`: each counter has a slot of its own (the one after the quota
    /// counts only what passes it), the first keeping the rule's key and slot (as when a rule had one counter slot).
    /// </summary>
    [Fact]
    public void EachCounterOfARuleHasASlotOfItsOwn()
    {
        var t = CorpusLoader.Table("hooks", "ip", "t4");
        var chain = t.Chains[0];
        var rule = chain.Rules[0];
        var exprs = rule.Expressions!;
        Assert.IsType<Nft.Bytecode.Expressions.CounterExpr>(exprs[4]);
        var two = rule with { Expressions = [.. exprs.Take(5), new Nft.Bytecode.Expressions.QuotaExpr(100, Nft.Bytecode.Expressions.QuotaExpr.NFT_QUOTA_F_INV),
            new Nft.Bytecode.Expressions.CounterExpr(), .. exprs.Skip(5)] };
        var slots = new CounterSlots();
        var one = NftLifter.LiftChains([t], slots);
        var lifted = NftLifter.LiftChains([t with { Chains = [chain with { Rules = [two, .. chain.Rules.Skip(1)] }, .. t.Chains.Skip(1)] }], slots);

        var key = new CounterKey(Nft.Bytecode.NfProto.Ipv4, "t4", chain.Name, rule.Handle!.Value);
        var later = key with { ExpressionIndex = 6 };
        Assert.Equal(one.Counters[key], lifted.Counters[key]);
        Assert.NotEqual(lifted.Counters[key], lifted.Counters[later]);
        var statements = lifted.Listing.Single(r => r.Table == "t4" && r.Handle == rule.Handle).Lifted.Statements;
        Assert.Equal(3, statements.Count);
        Assert.Equal(new CounterStatement(lifted.Counters[key]), statements[0]);
        Assert.IsType<QuotaStatement>(statements[1]);
        Assert.Equal(new CounterStatement(lifted.Counters[later]), statements[2]);
    }

    [Fact]
    public void ExplainListsSourceExpressionsAndLiftedRule()
    {
        var text = NftLifter.LiftTable(CorpusLoader.Table("hooks", "ip", "t4")).Explain();
        var handle = CorpusLoader.Table("hooks", "ip", "t4").Chains[0].Rules[0].Handle;
        var expected = $"""
            ip t4 in handle {handle}
               0 [ meta load l4proto => reg 1 ]
               1 [ cmp eq reg 1 0x00000001 ]
               2 [ payload load 1b @ transport header + 0 => reg 1 ]
               3 [ cmp eq reg 1 0x00000008 ]
               4 [ counter pkts 0 bytes 0 ]
               5 [ immediate reg 0 drop ]
              => icmp type == 8 counter #0 drop

            """;
        Assert.StartsWith(expected.Replace("\r", ""), text);
        Assert.EndsWith(NftLifter.LiftTable(CorpusLoader.Table("hooks", "ip", "t4")).Ruleset.ToString(), text);
    }
}
