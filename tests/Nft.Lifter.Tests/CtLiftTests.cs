using Bpfilter.Backend.Ir;
using Nft.Netlink;

namespace Nft.Lifter.Tests;

/// <summary>
/// ct matches from Corpus/ct.nft (kernel dump): the keys netfilter programs read lift to ct fields (the
/// tuple keys are in CtKeyLiftTests); other keys, ct set, and ct in chains that run at a device are refused
/// naming the key.
/// </summary>
public class CtLiftTests
{
    [Theory]
    // ct_state is a host-order bitmask: `ct state a,b` is nft's flag test (state & mask) != 0
    [InlineData("state_flags", "ct state & 0x00000006 != 0x00000000 accept")]
    [InlineData("state_new", "ct state & 0x00000008 != 0x00000000 accept")]
    [InlineData("state_eq", "ct state == 0x00000008 accept")]
    [InlineData("state_ne", "ct state != 0x00000002 accept")]
    [InlineData("state_invalid", "ct state & 0x00000001 != 0x00000000 drop")]
    [InlineData("state_untracked", "ct state & 0x00000040 != 0x00000000 accept")]
    [InlineData("direction", "ct direction == 0 accept")]
    [InlineData("direction_reply", "ct direction == 1 counter #0 accept")]
    [InlineData("status_dnat", "ct status & 0x00000020 != 0x00000000 accept")]
    [InlineData("status_flags", "ct status & 0x0000000c != 0x00000000 accept")]
    [InlineData("mark", "ct mark == 0x00000010 accept")]
    [InlineData("mark_ne", "ct mark != 0x00000010 accept")]
    [InlineData("mark_gt", "ct mark > 0x00000010 accept")]
    [InlineData("mark_mask", "ct mark & 0x000000ff == 0x00000001 accept")]
    [InlineData("zone", "ct zone == 3 accept")]
    [InlineData("state_new_ssh", "ct state & 0x00000008 != 0x00000000 tcp dport == 22 accept")]
    [InlineData("state_ne_mark", "ct state != 0x00000008 meta mark == 0x00000001 drop")]
    public void LiftsCtKey(string comment, string expected)
    {
        var t = CorpusLoader.Table("ct", "inet", "c");
        var rule = CorpusLoader.RuleByComment(t, comment);
        var lifted = NftLifter.LiftRule(t, CorpusLoader.ChainOf(t, rule), rule);
        Assert.Equal(expected, lifted.Rule.ToString());
    }

    [Theory]
    [InlineData("state_set")]
    [InlineData("state_named_set")]
    public void StateSetsHoldTheStateBits(string comment)
    {
        var t = CorpusLoader.Table("ct", "inet", "c");
        var rule = CorpusLoader.RuleByComment(t, comment);
        var lifted = NftLifter.LiftRule(t, "input", rule);
        var m = Assert.Single(lifted.Rule.Matchers);
        Assert.Equal(CtFields.State, Assert.Single(m.Key.Fields));
        var set = Assert.Single(lifted.Sets);
        Assert.Equal([0x00000002ul, 0x00000004ul], set.Elements.Select(e => ((KeyPart.Exact)e.Key[0]).Value.ToUInt64()).Order());
    }

    [Fact]
    public void StateVerdictMapHoldsTheStateBits()
    {
        var t = CorpusLoader.Table("ct", "inet", "c");
        var rule = CorpusLoader.RuleByComment(t, "state_vmap");
        var lifted = NftLifter.LiftRule(t, "input", rule);
        var set = Assert.Single(lifted.Sets);
        Assert.Equal(CtFields.State, Assert.Single(set.Key.Fields));
        Assert.Equal([0x1ul, 0x2ul, 0x4ul], set.Elements.Select(e => ((KeyPart.Exact)e.Key[0]).Value.ToUInt64()).Order());
    }

    [Fact]
    public void WholeTableLiftsToBpfWithReachedChain()
    {
        var r = NftLifter.Lift([CorpusLoader.Table("ct", "inet", "c")]);
        Assert.Single(r.Ruleset.BaseChains);
        Assert.Single(r.Ruleset.Chains);
        Assert.Equal("ct state & 0x00000002 != 0x00000000 accept", r.Ruleset.Chains[0].Rules[0].ToString());
    }

    const string NotSupported = " is not supported by bpfilter-nft";
    const string OnlyKeys = NotSupported + " (only ct state, direction, status, mark, zone, expiration, label, l3proto, protocol, and original|reply saddr, daddr, ip saddr, ip daddr, ip6 saddr, ip6 daddr, proto-src, proto-dst, zone)";

    [Theory]
    [InlineData("helper", 0, "expression 'ct helper'" + OnlyKeys)]
    [InlineData("mark_set", 1, "expression 'ct' setting ct mark" + NotSupported)]
    [InlineData("count", 0, "expression 'connlimit'" + NotSupported)]
    public void RefusesOtherCtUses(string comment, int index, string reason)
    {
        var t = CorpusLoader.Table("ct", "inet", "refused");
        var rule = CorpusLoader.RuleByComment(t, comment);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "input", rule));
        Assert.Equal(reason, e.Reason);
        Assert.Equal(index, e.ExpressionIndex);
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
    }

    [Theory]
    [InlineData("expiration", "ct expiration == 5000 accept")]
    [InlineData("l3proto", "ct l3proto == 2 accept")]
    [InlineData("original_saddr", "ct original ip saddr == 10.0.0.1 accept")]
    [InlineData("original_zone", "ct original zone == 1 accept")]
    public void KeysOnceRefusedLift(string comment, string expected)
    {
        var t = CorpusLoader.Table("ct", "inet", "refused");
        var lifted = NftLifter.LiftRule(t, "input", CorpusLoader.RuleByComment(t, comment));
        Assert.Equal(expected, lifted.Rule.ToString());
    }

    [Fact]
    public void RefusesCtInChainsThatRunAtADevice()
    {
        var t = CorpusLoader.Table("ct", "inet", "ingress");
        var rule = CorpusLoader.RuleByComment(t, "ingress_state");
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "in", rule));
        Assert.StartsWith("expression 'ct state' is not supported in chains that run at a device (netdev, inet ingress)", e.Reason);

        var lift = NftLifter.LiftChains([t]);
        var refused = lift.Refusals.Select(r => r.ToException()).ToList();
        Assert.Contains(refused, x => x.Chain == "in");
        // a regular chain with ct reached from an ingress chain: refused there, naming the rule in the reached chain
        var reached = Assert.Single(refused, x => x.Chain == "reached");
        Assert.StartsWith("expression 'ct' in a chain reached from ingress_jump, which runs at a device", reached.Reason);
    }
}
