using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

public class SetAndChainTests
{
    private static byte[] Tcp4(string src = "198.18.0.1", ushort dport = 22) =>
        PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport);

    private static SetElement Exact(Value v, Verdict? verdict = null) => SetElement.Exact(v, verdict);
    private static SetElement Parts(params KeyPart[] parts) => new(parts.ToValueList());

    [Fact]
    public void HashSetOfAddresses()
    {
        var set = new Backend.Ir.Set("block", Fields.Ip.Saddr, SetData.NoData,
            ValueList.Of(Exact(V4("198.18.0.5")), Exact(V4("198.18.0.6"))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "block"))], sets: [set]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.7")));

        // Adding an element is a map update: the next packet sees it without a reload.
        var map = p.SetMap("block")!;
        map.Update(V4("198.18.0.7").Bytes.AsSpan(), BitConverter.GetBytes(1u));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.7")));
    }

    [Fact]
    public void NegatedSetLookup()
    {
        var set = new Backend.Ir.Set("allowed", Fields.Tcp.Dport, SetData.NoData, ValueList.Of(Exact(U16(22)), Exact(U16(443))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Tcp.Dport, "allowed", negated: true))], sets: [set]);
        Assert.Equal(XdpPass, p.Run(Tcp4(dport: 22)));
        Assert.Equal(XdpPass, p.Run(Tcp4(dport: 443)));
        Assert.Equal(XdpDrop, p.Run(Tcp4(dport: 80)));
    }

    /// <summary>
    /// `tcp window != @set` on a packet whose TCP header ends before the window (a first fragment of
    /// 8 bytes): the field cannot be read, so the rule breaks as in nf_tables, it does not match as a
    /// key missing from the set would (found by the differential tester at ip prerouting).
    /// </summary>
    [Fact]
    public void NegatedSetLookupBreaksWhenTheKeyCannotBeRead()
    {
        var set = new Backend.Ir.Set("wins", Fields.Tcp.Window, SetData.NoData, ValueList.Of(Exact(U16(1234))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Tcp.Window, "wins", negated: true))], sets: [set]);
        byte[] full = Tcp4();
        Assert.Equal(XdpDrop, p.Run(full)); // window 64240, not in the set
        var cut = full[..42]; // Ethernet + IPv4 + the first 8 bytes of TCP
        cut[16] = 0;
        cut[17] = 28; // IPv4 total length
        Assert.Equal(XdpPass, p.Run(cut));
    }

    [Fact]
    public void IntervalSetBecomesLpmTrie()
    {
        var set = new Backend.Ir.Set("nets", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(
            Parts(new KeyPart.Prefix(V4("10.0.0.0"), 8)),
            Parts(new KeyPart.Range(V4("198.18.0.10"), V4("198.18.0.20"))),
            Exact(V4("198.19.1.1"))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "nets"))], sets: [set]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("10.200.3.4")));
        Assert.Equal(XdpPass, p.Run(Tcp4("11.0.0.1")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.9")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.10")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.17")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.20")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.21")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.19.1.1")));
    }

    [Fact]
    public void PortRangeSet()
    {
        var set = new Backend.Ir.Set("ports", Fields.Tcp.Dport, SetData.NoData,
            ValueList.Of(Parts(new KeyPart.Range(U16(1000), U16(1999)))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Tcp.Dport, "ports"))], sets: [set]);
        Assert.Equal(XdpPass, p.Run(Tcp4(dport: 999)));
        Assert.Equal(XdpDrop, p.Run(Tcp4(dport: 1000)));
        Assert.Equal(XdpDrop, p.Run(Tcp4(dport: 1999)));
        Assert.Equal(XdpPass, p.Run(Tcp4(dport: 2000)));
    }

    [Fact]
    public void ConcatenatedKey()
    {
        var key = new MatchKey(Fields.Ip.Saddr, Fields.Tcp.Dport);
        var set = new Backend.Ir.Set("pairs", key, SetData.NoData, ValueList.Of(
            Parts(new KeyPart.Exact(V4("198.18.0.1")), new KeyPart.Exact(U16(22))),
            Parts(new KeyPart.Exact(V4("198.18.0.2")), new KeyPart.Range(U16(80), U16(81)))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(key, "pairs"))], sets: [set]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 22)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 80)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.2", 81)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.2", 82)));
    }

    [Fact]
    public void VerdictMapWithJump()
    {
        var web = new Chain("t/web", ValueList.Of(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.66")))));
        var vmap = new Backend.Ir.Set("svc", Fields.Tcp.Dport, SetData.VerdictData, ValueList.Of(
            Exact(U16(22), Verdict.Accept), Exact(U16(23), Verdict.Drop), Exact(U16(80), Verdict.Jump("t/web"))));
        using var p = Load(Xdp, Verdict.Drop,
            [new Rule(Verdict.VMap(Fields.Tcp.Dport, "svc")), Accept(Matcher.Eq(Fields.Tcp.Dport, U16(80)))],
            chains: [web], sets: [vmap]);
        Assert.Equal(XdpPass, p.Run(Tcp4(dport: 22)));
        Assert.Equal(XdpDrop, p.Run(Tcp4(dport: 23)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 80))); // web chain falls through, next rule accepts
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.66", 80)));
        Assert.Equal(XdpDrop, p.Run(Tcp4(dport: 8080))); // no element: continue, then policy drop
    }

    [Fact]
    public void JumpReturnsGotoDoesNot()
    {
        // base: jump sub; ip saddr .9 accept; policy drop.   sub: tcp dport 22 return; ip saddr .1 accept
        var sub = new Chain("t/sub", ValueList.Of(
            new Rule(Verdict.Return, Matcher.Eq(Fields.Tcp.Dport, U16(22))),
            Accept(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1")))));
        using (var p = Load(Xdp, Verdict.Drop,
                   [new Rule(Verdict.Jump("t/sub")), Accept(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.9")))], chains: [sub]))
        {
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 80))); // accepted in sub
            Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 22))); // returned, then nothing matches: policy
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.9", 22))); // returned, next base rule accepts
        }
        using (var p = Load(Xdp, Verdict.Drop,
                   [new Rule(Verdict.Goto("t/sub")), Accept(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.9")))], chains: [sub]))
        {
            Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.9", 22))); // goto: return goes to the policy, not the next rule
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 80)));
        }
    }

    [Fact]
    public void JumpLoopIsRefused()
    {
        var a = new Chain("t/a", ValueList.Of(new Rule(Verdict.Jump("t/b"))));
        var b = new Chain("t/b", ValueList.Of(new Rule(Verdict.Jump("t/a"))));
        var rs = Ruleset(Xdp, Verdict.Accept, [new Rule(Verdict.Jump("t/a"))], [a, b]);
        var ex = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.Contains("loop", ex.Message);
    }

    [Fact]
    public void BaseChainsRunInPriorityOrder()
    {
        var first = new BaseChain("t/first", Xdp, -10, Verdict.Accept,
            ValueList.Of(Accept(Matcher.Eq(Fields.Tcp.Dport, U16(22)))));
        var second = new BaseChain("t/second", Xdp, 10, Verdict.Accept,
            ValueList.Of(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.5")))));
        var rs = new Ruleset(ValueList.Of(second, first), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
        using var p = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        // accept in the first chain does not skip the second one; drop there ends everything
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5", 22)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6", 22)));
    }

    [Fact]
    public void AnInetIngressChainAfterANetdevChainReadsNfprotoFromThePacket()
    {
        // one XDP program for the device: netdev (nfproto 5) first, then inet ingress (nfproto of the packet)
        var netdev = new BaseChain("netdev t/first", new XdpIngress("lo"), 10, Verdict.Accept, ValueList<Rule>.Empty);
        var inet = new BaseChain("inet t/second", new XdpIngress("lo", IpOnly: true), 110, Verdict.Accept,
            ValueList.Of(Drop(Matcher.Eq(Fields.NfProto, U8(2)), Matcher.Eq(Fields.Tcp.Dport, U16(22)))));
        var rs = new Ruleset(ValueList.Of(netdev, inet), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
        using var p = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5", 22)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5", 23)));
    }

    [Fact]
    public void InetIngressSeesOnlyIp()
    {
        using var p = Load(new XdpIngress("lo", IpOnly: true), Verdict.Drop, [Accept(Matcher.Eq(Fields.NfProto, U8(10)))]);
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Build())); // ARP: not evaluated
        Assert.Equal(XdpDrop, p.Run(Tcp4())); // nfproto ipv4 → policy
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2)));
        var bad = Tcp4();
        bad[14] = 0x43; // ihl 3: invalid
        Assert.Equal(XdpDrop, p.Run(bad));
    }
}

public class LargeProgramTests
{
    [Fact]
    public void JumpOverAChainLongerThanA16BitOffset()
    {
        // 2500 one-matcher rules: the inlined chain is longer than a conditional jump can span
        // (compiled as rules: grouping would make them one lookup).
        var big = Enumerable.Range(0, 2500).Select(i => Drop(Matcher.Eq(Fields.Ip.Saddr, Value.FromBytes(10, 9, (byte)(i >> 8), (byte)i))))
            .Append(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.66")))).ToArray();
        using var p = Load(Xdp, Verdict.Accept, [
            new Rule(Verdict.Jump("t/big"), Matcher.Eq(Fields.Tcp.Dport, U16(22))),
            Drop(Matcher.Eq(Fields.Tcp.Dport, U16(23))),
        ], chains: [new Chain("t/big", big.ToValueList())], lowering: LoweringPipeline.None);
        Assert.True(p.Compiled.Instructions.Length > 32768);
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.66", "198.18.0.2").Tcp(1, 22)));
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.67", "198.18.0.2").Tcp(1, 22)));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.67", "198.18.0.2").Tcp(1, 23)));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("10.9.1.2", "198.18.0.2").Tcp(1, 22)));
    }
}

public class SetUpdateTests
{
    [Fact]
    public void ElementsAreAddedAndRemovedWithoutReload()
    {
        var set = new Backend.Ir.Set("nets", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(
            new SetElement(ValueList.Of<KeyPart>(new KeyPart.Prefix(V4("10.0.0.0"), 8)))));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "nets"))], sets: [set]);
        var pkt = PacketBuilder.Ether().Ipv4("198.18.0.15", "198.18.0.2").Tcp(1, 2).Build();
        Assert.Equal(XdpPass, p.Run(pkt));
        var range = new SetElement(ValueList.Of<KeyPart>(new KeyPart.Range(V4("198.18.0.10"), V4("198.18.0.20"))));
        Assert.True(p.AddElement("nets", range));
        Assert.Equal(XdpDrop, p.Run(pkt));
        Assert.True(p.RemoveElement("nets", range));
        Assert.Equal(XdpPass, p.Run(pkt));
        Assert.False(p.AddElement("other", range));
    }

    [Fact]
    public void NewVmapVerdictNeedsAReload()
    {
        var vmap = new Backend.Ir.Set("svc", Fields.Tcp.Dport, SetData.VerdictData, ValueList.Of(SetElement.Exact(U16(22), Verdict.Accept)));
        using var p = Load(Xdp, Verdict.Drop, [new Rule(Verdict.VMap(Fields.Tcp.Dport, "svc"))], sets: [vmap]);
        Assert.True(p.AddElement("svc", SetElement.Exact(U16(2222), Verdict.Accept)));
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(1, 2222)));
        Assert.Throws<CodegenException>(() => p.AddElement("svc", SetElement.Exact(U16(23), Verdict.Jump("t/x"))));
    }
}
