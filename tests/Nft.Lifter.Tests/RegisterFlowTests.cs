using Bpfilter.Backend.Ir;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using NftRule = Nft.Bytecode.Objects.Rule;

namespace Nft.Lifter.Tests;

/// <summary>
/// Register flows nft does not produce, made by editing real rules of the corpus: the lifter follows
/// the registers exactly (aliases, concatenations) and refuses every flow it cannot explain.
/// </summary>
public class RegisterFlowTests
{
    static readonly SourceTable T4 = CorpusLoader.Table("matches", "ip", "t4");
    static readonly SourceTable T6 = CorpusLoader.Table("matches", "ip6", "t6");
    static readonly SourceTable Nd = CorpusLoader.Table("matches", "netdev", "n");

    static List<Expression> Exprs(SourceTable t, string comment) => CorpusLoader.RuleByComment(t, comment).Expressions!.ToList();

    static NftRule With(SourceTable t, string comment, List<Expression> exprs) =>
        CorpusLoader.RuleByComment(t, comment) with { Expressions = exprs };

    static Rule Lift(SourceTable t, string chain, NftRule r) => NftLifter.LiftRule(t, chain, r).Rule;

    static LiftException Refused(SourceTable t, string chain, NftRule r) =>
        Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, chain, r));

    [Theory]
    [InlineData(8u)]  // NFT_REG32_00 aliases the first word of NFT_REG_1
    [InlineData(9u)]  // NFT_REG32_01
    [InlineData(4u)]  // NFT_REG_4
    public void RegisterNumbersAlias(uint reg)
    {
        // meta l4proto => reg 1; cmp; payload load => reg 1; cmp; immediate
        var e = Exprs(T4, "tcp_dport");
        e[2] = ((PayloadExpr)e[2]) with { DReg = reg };
        e[3] = ((CmpExpr)e[3]) with { SReg = reg };
        Assert.Equal("tcp dport == 22 accept", Lift(T4, "in", With(T4, "tcp_dport", e)).ToString());
    }

    [Fact]
    public void ReadBeforeWriteIsRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        e.RemoveAt(0);
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((0, "reads register 1 before anything wrote it"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void UnconsumedValueIsRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        e.RemoveAt(3);
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((2, "expression 'payload' loads a value that nothing reads"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void OverwriteBeforeUseIsRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        e.Insert(3, e[2]);
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((2, "the value it loads into register 1 is overwritten before anything reads it"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void ExpressionAfterVerdictIsRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        (e[3], e[4]) = (e[4], e[3]);
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((4, "expression 'cmp' after the verdict is not supported"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void ReadingFromTheMiddleOfAValueIsRefused()
    {
        // payload load 16b => reg 1 (ip6 saddr); cmp reading NFT_REG32_01, inside that value
        var e = Exprs(T6, "saddr6");
        e[1] = new CmpExpr(9, CmpExpr.Eq, new ValueData([0, 0, 0, 0]));
        var x = Refused(T6, "out", With(T6, "saddr6", e));
        Assert.Equal((1, "reads register 9 from the middle of a value"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void ValuePastTheLastRegisterIsRefused()
    {
        var e = Exprs(T6, "saddr6");
        e[0] = ((PayloadExpr)e[0]) with { DReg = 23 };
        var x = Refused(T6, "out", With(T6, "saddr6", e));
        Assert.Equal((0, "a 16-byte value does not fit at register 23"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void VerdictRegisterIsNoDataRegister()
    {
        var e = Exprs(T4, "tcp_dport");
        e[2] = ((PayloadExpr)e[2]) with { DReg = 0 };
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((2, "register 0 is not a data register"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void ConcatenatedCmpComparesEachField()
    {
        // ip saddr => reg 1, tcp dport => NFT_REG32_01, one cmp over both (4 + 2 bytes)
        var e = Exprs(T4, "tcp_dport");
        var saddr = new PayloadExpr(PayloadExpr.BaseNetwork, 12, 4, 1);
        var dport = ((PayloadExpr)e[2]) with { DReg = 9 };
        var cmp = new CmpExpr(1, CmpExpr.Eq, new ValueData([10, 0, 0, 1, 0, 22]));
        var r = Lift(T4, "in", With(T4, "tcp_dport", [e[0], e[1], saddr, dport, cmp, e[4]]));
        Assert.Equal("ip saddr . tcp dport == 10.0.0.1 . 22 accept", r.ToString());
        Assert.Equal(new MatchKey(Fields.Ip.Saddr, Lifted.TcpDport), r.Matchers[0].Key);

        var gt = cmp with { Op = CmpExpr.Gt };
        var x = Refused(T4, "in", With(T4, "tcp_dport", [e[0], e[1], saddr, dport, gt, e[4]]));
        Assert.Equal((4, "ordered comparison of a concatenation is not supported by bpfilter-nft"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void ConstantOutsideTheMaskIsRefused()
    {
        // ip dscp: payload, bitwise & 0xfc, cmp: a constant with the low bits set can never match
        var e = Exprs(T4, "dscp");
        e[2] = new CmpExpr(1, CmpExpr.Eq, new ValueData([0xb9]));
        var x = Refused(T4, "in", With(T4, "dscp", e));
        Assert.Equal(2, x.ExpressionIndex);
        Assert.Contains("can never hold", x.Reason);
    }

    [Fact]
    public void OrderedHostOrderMetaWithoutByteorderIsRefused()
    {
        // meta mark > 0x10 without its byteorder: memcmp of a little-endian number is not numeric order
        var e = Exprs(T4, "mark_gt");
        Assert.IsType<ByteorderExpr>(e[1]);
        e.RemoveAt(1);
        var x = Refused(T4, "in", With(T4, "mark_gt", e));
        Assert.Equal((1, "ordered comparison of host-order meta mark without byteorder is not supported"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void ByteorderOnPayloadIsRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        e.Insert(3, new ByteorderExpr(1, 1, ByteorderExpr.OpHton, 2, 2));
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((3, "expression 'byteorder' is supported only as hton of a 32-bit meta value"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void BitwiseShiftIsRefused()
    {
        var e = Exprs(T4, "dscp");
        e[1] = new BitwiseExpr(1, 1, 1, BitwiseExpr.OpRshift, Data: new ValueData([2, 0, 0, 0]));
        var x = Refused(T4, "in", With(T4, "dscp", e));
        Assert.Equal((1, "bitwise shift is not supported by bpfilter-nft"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void CounterBeforeAMatchIsRefused()
    {
        // the IR counts after all matchers; a counter in front of a match would count packets it does not match
        var e = Exprs(T4, "tcp_dport");
        var saddr = CorpusLoader.RuleByComment(T4, "saddr_ne").Expressions!;
        var x = Refused(T4, "in", With(T4, "tcp_dport", [e[0], e[1], e[2], e[3], new CounterExpr(), saddr[0], saddr[1], e[4]]));
        Assert.Equal(4, x.ExpressionIndex);
        var y = Refused(T4, "in", With(T4, "tcp_dport", [new CounterExpr(), .. e]));
        Assert.Equal(0, y.ExpressionIndex);
        // a counter after the last match is fine, whatever the verdict
        Assert.Equal("tcp dport == 22 counter #0 accept", Lift(T4, "in", With(T4, "tcp_dport", [.. e.Take(4), new CounterExpr(), e[4]])).ToString());
    }

    [Fact]
    public void UnknownSetAndChainAreRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        var lookup = new LookupExpr("nosuchset", null, 1);
        var x = Refused(T4, "in", With(T4, "tcp_dport", [e[0], e[1], e[2], lookup, e[4]]));
        Assert.Equal((3, "lookup in set 'nosuchset' that does not exist"), (x.ExpressionIndex, x.Reason));

        var jump = new ImmediateExpr(0, new VerdictData(Nft.Bytecode.Data.Verdict.JumpTo("nowhere")));
        var y = Refused(T4, "in", With(T4, "tcp_dport", [.. e.Take(4), jump]));
        Assert.Equal((4, "jump nowhere: no such chain"), (y.ExpressionIndex, y.Reason));

        var toBase = new ImmediateExpr(0, new VerdictData(Nft.Bytecode.Data.Verdict.JumpTo("in")));
        var z = Refused(T4, "in", With(T4, "tcp_dport", [.. e.Take(4), toBase]));
        Assert.Equal((4, "jump in: cannot jump to a base chain"), (z.ExpressionIndex, z.Reason));
    }

    [Fact]
    public void UnknownKindAndMissingHandleAreRefused()
    {
        var e = Exprs(T4, "tcp_dport");
        e.Insert(4, new OpaqueExpr("frobnicate", []));
        var x = Refused(T4, "in", With(T4, "tcp_dport", e));
        Assert.Equal((4, "expression 'frobnicate' is not supported by bpfilter-nft"), (x.ExpressionIndex, x.Reason));

        var noHandle = CorpusLoader.RuleByComment(T4, "tcp_dport") with { Handle = null };
        Assert.Equal("rule without a handle", Refused(T4, "in", noHandle).Reason);
    }

    [Fact]
    public void IifTypeWithoutLinkLayerMatchIsRefused()
    {
        // netdev `ether saddr`: meta iiftype => reg 1; cmp eq ether; payload; cmp; drop — keep only the dependency
        var e = Exprs(Nd, "nd_ether_saddr");
        var x = Refused(Nd, "ing", With(Nd, "nd_ether_saddr", [e[0], e[1], e[4]]));
        Assert.Equal((1, "meta iiftype ether is supported only as the dependency of a link-layer match"), (x.ExpressionIndex, x.Reason));
    }

    [Fact]
    public void NetdevNetworkLoadWithoutDependencyIsRefused()
    {
        // netdev `ip saddr`: meta protocol => reg 1; cmp ip; payload @nh; cmp; drop — without the protocol match
        var e = Exprs(Nd, "nd_ip");
        var x = Refused(Nd, "ing", With(Nd, "nd_ip", [e[2], e[3], e[4]]));
        Assert.Equal((0, "a network header match without an ip or ip6 dependency is not supported in netdev chains"), (x.ExpressionIndex, x.Reason));
        Assert.Equal("ip saddr == 1.2.3.4 drop", Lift(Nd, "ing", With(Nd, "nd_ip", e)).ToString());
    }

    [Fact]
    public void EmptyRuleContinues()
    {
        var r = Lift(T4, "in", With(T4, "tcp_dport", []));
        Assert.Empty(r.Matchers);
        Assert.Equal(Bpfilter.Backend.Ir.Verdict.Continue, r.Verdict);
        Assert.Null(r.CounterId);
    }
}
