using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter.Tests;

/// <summary>
/// `meta mark set 0x10` (immediate reg 1 0x00000010; meta set mark with reg 1): a MetaSetStatement with the
/// constant, kept only in chains that run as tc egress programs (netdev egress); at XDP and at netfilter
/// hooks the chain is refused with the reason, and a mark not given as a constant is refused.
/// </summary>
public class MarkSetLiftTests
{
    static readonly SourceTable Nd = CorpusLoader.Table("matches", "netdev", "n");

    static readonly Expression[] SetMark =
        [new ImmediateExpr(1, new ValueData(BitConverter.GetBytes(0x10u))), new MetaExpr(MetaExpr.KeyMark, null, SReg: 1)];

    /// <summary>The netdev table with one chain `ing` holding only `meta mark set 0x10`, hooked at <paramref name="hook"/>.</summary>
    static SourceTable WithMarkSet(uint hook)
    {
        var c = Nd.Chains.Single(x => x.Name == "ing");
        var rule = c.Rules[0] with { Expressions = [.. SetMark] };
        var chain = c.Chain with { Hook = c.Chain.Hook! with { HookNum = hook } };
        return Nd with { Chains = [new SourceChain(chain, [rule])] };
    }

    [Fact]
    public void AConstantMarkLiftsAsAMetaSetStatementAndRunsAtNetdevEgress()
    {
        var t = WithMarkSet(NfHooks.NetdevEgress);
        var rule = NftLifter.LiftRule(t, "ing", t.Chains[0].Rules[0]).Rule;
        Assert.Equal(new MetaSetStatement(MetaSetKey.Mark, new StatementValue.Immediate(Value.FromUInt(0x10, 32))), Assert.Single(rule.Statements));
        var result = NftLifter.LiftTable(t);
        Assert.IsType<TcEgress>(Assert.Single(result.Ruleset.BaseChains).Hook);
    }

    [Fact]
    public void AtNetdevIngressTheChainIsRefusedAsXdpHasNoSkbToMark()
    {
        var t = WithMarkSet(NfHooks.NetdevIngress);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(t));
        Assert.Equal(1, e.ExpressionIndex);
        Assert.StartsWith("expression 'meta' setting meta mark in a chain reached from ing, which runs as XDP", e.Reason);
    }

    [Fact]
    public void AtANetfilterHookTheChainIsRefusedAsBpfNetfilterCannotWriteTheMark()
    {
        var t4 = CorpusLoader.Table("matches", "ip", "t4");
        var c = t4.Chains.Single(x => x.Name == "in");
        var t = t4 with { Chains = [new SourceChain(c.Chain, [c.Rules[0] with { Expressions = [.. SetMark] }])] };
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(t));
        Assert.Equal("expression 'meta' setting meta mark in a chain reached from in, which runs at a netfilter hook, where BPF_NETFILTER " +
            "programs cannot write skb->mark: bpfilter-nft sets the mark only in netdev egress chains (tcx)", e.Reason);
    }

    [Fact]
    public void AMarkFromAnythingButAConstantIsRefused()
    {
        // meta mark set meta mark: the value is read from the packet's metadata
        var t = WithMarkSet(NfHooks.NetdevEgress);
        var rule = t.Chains[0].Rules[0] with { Expressions = [new MetaExpr(MetaExpr.KeyMark, 1), SetMark[1]] };
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "ing", rule));
        Assert.Equal("expression 'meta' setting meta mark from a value other than a constant is not supported by bpfilter-nft", e.Reason);
    }
}
