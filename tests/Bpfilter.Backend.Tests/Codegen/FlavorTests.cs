using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>The same matchers through the TC and netfilter flavors.</summary>
public class FlavorTests
{
    private static byte[] Tcp4(string src = "198.18.0.1", ushort dport = 22) =>
        PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport);

    [Fact]
    public void TcIngressVerdictsAndCounters()
    {
        using var p = Load(TcIn, Verdict.Accept, [
            Counted(1, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1")), Matcher.Eq(Fields.Tcp.Dport, U16(22))),
        ]);
        Assert.Equal(TcShot, p.Run(Tcp4()));
        Assert.Equal(TcOk, p.Run(Tcp4(dport: 23)));
        Assert.Equal(TcOk, p.Run(Tcp4("198.18.0.3")));
        Assert.Equal((1UL, 46UL), p.Counter(1));
    }

    [Fact]
    public void TcEgressCountsTheWholeFrameAndReadsMark()
    {
        using var p = Load(TcOut, Verdict.Drop, [
            Counted(1, Verdict.Accept, Matcher.Eq(Fields.Mark, U32(0))),
        ]);
        Assert.Equal(TcOk, p.Run(Tcp4()));
        Assert.Equal((1UL, 60UL), p.Counter(1)); // egress: skb->len includes the Ethernet header
    }

    [Fact]
    public void TcIpv6AndSets()
    {
        var set = new Backend.Ir.Set("v6", Fields.Ip6.Saddr, SetData.NoData, ValueList.Of(
            new SetElement(ValueList.Of<KeyPart>(new KeyPart.Prefix(V6("2001:db8:1::"), 48)))));
        using var p = Load(TcIn, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip6.Saddr, "v6"))], sets: [set]);
        Assert.Equal(TcShot, p.Run(PacketBuilder.Ether().Ipv6("2001:db8:1::5", "2001:db8::2").Udp(1, 2)));
        Assert.Equal(TcOk, p.Run(PacketBuilder.Ether().Ipv6("2001:db8:2::5", "2001:db8::2").Udp(1, 2)));
    }

    [Fact]
    public void MarkIsRefusedAtXdp()
    {
        var rs = Ruleset(Xdp, Verdict.Accept, [Drop(Matcher.Eq(Fields.Mark, U32(1)))]);
        var ex = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.Contains("meta mark is not available", ex.Message);
        Assert.Contains("t/base", ex.Message);
    }

    [Fact]
    public void NetfilterIpv4Matchers()
    {
        using var p = Load(NfIn4, Verdict.Accept, [
            Counted(3, Verdict.Drop, Matcher.Prefix(Fields.Ip.Saddr, V4("198.18.0.0"), 24), Matcher.Eq(Fields.Tcp.Dport, U16(22))),
            Drop(Matcher.Eq(Fields.Udp.Dport, U16(53))),
        ]);
        Assert.Equal(NfDrop, p.Run(Tcp4()));
        Assert.Equal(NfAccept, p.Run(Tcp4(dport: 80)));
        Assert.Equal(NfAccept, p.Run(Tcp4("198.19.0.1")));
        Assert.Equal(NfDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1, 53)));
        Assert.Equal((1UL, 46UL), p.Counter(3)); // skb->len counts from the network header
    }

    [Fact]
    public void NetfilterSetsAndMeta()
    {
        var set = new Backend.Ir.Set("ports", Fields.Tcp.Dport, SetData.NoData,
            ValueList.Of(SetElement.Exact(U16(22)), SetElement.Exact(U16(25))));
        using var p = Load(NfIn4, Verdict.Accept, [
            Drop(Matcher.InSet(Fields.Tcp.Dport, "ports")),
            Drop(Matcher.Eq(Fields.NfProto, U8(10))), // never in an ipv4 program
            Drop(Matcher.Eq(Fields.Ip6.Saddr, V6("::1"))),
            Drop(Matcher.Gt(Fields.Length, U32(500))),
        ], sets: [set]);
        Assert.Equal(NfDrop, p.Run(Tcp4(dport: 25)));
        Assert.Equal(NfAccept, p.Run(Tcp4(dport: 26)));
        Assert.Equal(NfDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1, 2, payload: 600)));
    }
}

public class NetfilterIpv6Tests
{
    [Fact]
    public void InetChainGetsAnIpv6Program()
    {
        var hook = new NetfilterHook(NfFamily.Inet, NfHookPoint.Output, 0);
        using var p = Load(hook, Verdict.Accept, [
            Drop(Matcher.Eq(Fields.Ip6.Daddr, V6("2001:db8::2")), Matcher.Eq(Fields.Udp.Dport, U16(53))),
            Drop(Matcher.Eq(Fields.NfProto, U8(2))), // the ipv6 program never sees ipv4
        ], ipv6: true);
        // BPF_PROG_TEST_RUN for netfilter takes the hook and family from a struct nf_hook_state ctx.
        var ctx = new byte[Backend.Libbpf.VmlinuxBtf.StructSize("nf_hook_state")];
        ctx[Backend.Libbpf.VmlinuxBtf.Member("nf_hook_state", "hook").BitOffset / 8] = 3; // NF_INET_LOCAL_OUT
        ctx[Backend.Libbpf.VmlinuxBtf.Member("nf_hook_state", "pf").BitOffset / 8] = 10; // NFPROTO_IPV6
        uint Run(byte[] frame) => p.TestRun(frame[14..], ctx: ctx).ReturnValue;
        Assert.Equal(NfDrop, Run(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2", (0, 8)).Udp(1, 53)));
        Assert.Equal(NfDrop, Run(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 53))); // ports from the header's copy
        Assert.Equal(NfAccept, Run(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 54)));
        Assert.Equal(NfAccept, Run(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::3").Udp(1, 53)));
    }

    /// <summary>
    /// An inet chain's `ip saddr @s` (the lifter drops its `meta nfproto ipv4`, which the ip field implies): the ipv6
    /// program runs for ipv6 packets only, so the rule has no code there (its counter keeps a slot) and the program
    /// holds no copy of the set; the ipv4 program still looks the address up. Explicit comparisons of nfproto are
    /// decided at compile time in both programs and give what the code gave.
    /// </summary>
    [Fact]
    public void RulesForTheOtherFamilyHaveNoCodeInNetfilterPrograms()
    {
        var hook = new NetfilterHook(NfFamily.Inet, NfHookPoint.Output, 0);
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData,
            ValueList.Of(SetElement.Exact(V4("198.18.0.1")), SetElement.Exact(V4("198.18.0.3"))));
        Rule[] rules = [
            Counted(1, Verdict.Drop, Matcher.InSet(Fields.Ip.Saddr, "s")),
            Counted(5, Verdict.Drop, Matcher.Eq(Fields.NfProto, U8(2)), Matcher.Eq(Fields.Udp.Dport, U16(57))),
            Counted(2, Verdict.Drop, Matcher.Ne(Fields.NfProto, U8(10)), Matcher.Eq(Fields.Udp.Dport, U16(54))),
            Counted(3, Verdict.Drop, Matcher.Range(Fields.NfProto, U8(9), U8(11)), Matcher.Eq(Fields.Udp.Dport, U16(55))),
            Counted(4, Verdict.Drop, Matcher.Mask(Fields.NfProto, U8(0x0f), U8(0x02), negated: true), Matcher.Eq(Fields.Udp.Dport, U16(56))),
        ];
        using var v4 = Load(hook, Verdict.Accept, rules, sets: [set]);
        using var v6 = Load(hook, Verdict.Accept, rules, sets: [set], ipv6: true);
        Assert.Contains(v4.Compiled.Maps, m => m.DoubleBuffered && m.Entries.Count == 2);
        Assert.DoesNotContain(v6.Compiled.Maps, m => m.DoubleBuffered);

        Assert.Equal(NfDrop, v4.Run(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1, 53)));
        Assert.Equal(NfAccept, v4.Run(PacketBuilder.Ether().Ipv4("198.18.0.2", "198.18.0.2").Udp(1, 53)));
        Assert.Equal(NfDrop, v4.Run(PacketBuilder.Ether().Ipv4("198.18.0.2", "198.18.0.2").Udp(1, 54)));
        Assert.Equal(NfAccept, v4.Run(PacketBuilder.Ether().Ipv4("198.18.0.2", "198.18.0.2").Udp(1, 55)));
        Assert.Equal(NfAccept, v4.Run(PacketBuilder.Ether().Ipv4("198.18.0.2", "198.18.0.2").Udp(1, 56)));
        Assert.Equal(1UL, v4.Counter(1).Packets);
        Assert.Equal(1UL, v4.Counter(2).Packets);
        Assert.Equal(NfDrop, v4.Run(PacketBuilder.Ether().Ipv4("198.18.0.2", "198.18.0.2").Udp(1, 57)));

        var ctx = new byte[Backend.Libbpf.VmlinuxBtf.StructSize("nf_hook_state")];
        ctx[Backend.Libbpf.VmlinuxBtf.Member("nf_hook_state", "hook").BitOffset / 8] = 3; // NF_INET_LOCAL_OUT
        ctx[Backend.Libbpf.VmlinuxBtf.Member("nf_hook_state", "pf").BitOffset / 8] = 10; // NFPROTO_IPV6
        uint Run6(ushort dport) => v6.TestRun(((byte[])PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, dport))[14..], ctx: ctx).ReturnValue;
        Assert.Equal(NfAccept, Run6(53));
        Assert.Equal(NfAccept, Run6(54));
        Assert.Equal(NfDrop, Run6(55));
        Assert.Equal(NfDrop, Run6(56));
        Assert.Equal(NfAccept, Run6(57));
        Assert.Equal((0UL, 0UL), v6.Counter(1));
    }
}
