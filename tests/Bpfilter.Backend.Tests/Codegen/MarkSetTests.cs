using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// `meta mark set 0x10` in a tc program (BPF_PROG_TEST_RUN with a __sk_buff context): nft_meta_set_eval
/// writes skb->mark, the packet passes on, and a later `meta mark` match in the chain sees the new mark;
/// the mark comes back in the context out. Other hooks cannot write skb->mark and refuse it.
/// </summary>
public class MarkSetTests
{
    static readonly byte[] Packet = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1234, 53);
    static readonly Statement SetMark = new MetaSetStatement(MetaSetKey.Mark, new StatementValue.Immediate(U32(0x10)));

    /// <summary>A struct __sk_buff (192 bytes) with only mark (offset 8) set: the test run refuses other fields before it.</summary>
    static byte[] SkBuff(uint mark)
    {
        var c = new byte[192];
        BitConverter.TryWriteBytes(c.AsSpan(8), mark);
        return c;
    }

    [Fact]
    public void TcEgressSetsTheMarkAndALaterMatchInTheChainSeesIt()
    {
        using var p = Load(TcOut, Verdict.Accept, [
            new Rule(ValueList<Matcher>.Empty, ValueList.Of(SetMark, new CounterStatement(1)), Verdict.Continue),
            Counted(2, Verdict.Drop, Matcher.Eq(Fields.Mark, U32(0x10))),
        ]);
        var r = p.TestRun(Packet, ctx: SkBuff(0x7));
        Assert.Equal(TcShot, r.ReturnValue);
        Assert.Equal(0x10u, BitConverter.ToUInt32(r.ContextOut!, 8));
        Assert.Equal(1UL, p.Counter(1).Packets);
        Assert.Equal(1UL, p.Counter(2).Packets);
    }

    [Fact]
    public void ARuleThatDoesNotMatchLeavesTheMarkAsItWas()
    {
        using var p = Load(TcOut, Verdict.Accept, [
            new Rule(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(54))), ValueList.Of(SetMark), Verdict.Continue),
        ]);
        var r = p.TestRun(Packet, ctx: SkBuff(0x7));
        Assert.Equal(TcOk, r.ReturnValue);
        Assert.Equal(0x7u, BitConverter.ToUInt32(r.ContextOut!, 8));
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("netfilter")]
    public void OtherHooksCannotWriteTheMark(string hook)
    {
        var rs = Ruleset(hook == "xdp" ? Xdp : NfIn4, Verdict.Accept,
            [new Rule(ValueList<Matcher>.Empty, ValueList.Of(SetMark), Verdict.Continue) { Origin = "netdev t c handle 2" }]);
        var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.StartsWith("netdev t c handle 2: statement 'meta mark set", e.Message);
        Assert.Contains("only tc programs can write skb->mark", e.Message);
    }
}
