using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// ct fields in netfilter programs: every key passes the verifier (nf_conn read through bpf_rdonly_cast),
/// and a packet without a conntrack entry (BPF_PROG_TEST_RUN builds an skb with _nfct 0) is `ct state
/// invalid` and fails every other ct matcher, also `!=` (NFT_BREAK). Packets with an entry are compared
/// with the kernel in Bpfilter.Daemon.Tests (ConntrackTests) and the packet corpus. XDP and TC refuse ct.
/// </summary>
public class ConntrackTests
{
    static readonly CtField Label = new(CtReadKey.Label);

    /// <summary>16 label bytes with the first one set (labels 0-7).</summary>
    static Value Label16(byte first)
    {
        var b = new byte[16];
        b[0] = first;
        return new Value(b);
    }

    static byte[] Tcp4(ushort dport) => PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(40000, dport);

    [Fact]
    public void WithoutAnEntryStateIsInvalidAndOtherKeysNeverMatch()
    {
        using var p = Load(NfIn4, Verdict.Accept, [
            // no entry: these never match, whatever the operator
            Counted(1, Verdict.Continue, Matcher.Eq(CtFields.Direction, U8(0))),
            Counted(2, Verdict.Continue, Matcher.Ne(CtFields.Direction, U8(0))),
            Counted(3, Verdict.Continue, Matcher.Ne(CtFields.Mark, U32(7))),
            Counted(4, Verdict.Continue, Matcher.Mask(CtFields.Status, U32(0x8), U32(0), negated: true)),
            Counted(5, Verdict.Continue, Matcher.Ne(CtFields.Status, U32(0))),
            Counted(6, Verdict.Continue, Matcher.Eq(CtFields.Zone, U16(0))),
            Counted(7, Verdict.Continue, Matcher.Ne(CtFields.Zone, U16(0))),
            // `ct label != 5` and `ct label 1`: no entry, no labels (not 16 zero bytes)
            Counted(11, Verdict.Continue, Matcher.Ne(Label, Label16(0x20))),
            Counted(12, Verdict.Continue, Matcher.Mask(Label, Label16(0x02), Label16(0), negated: true)),
            // state: invalid (1)
            Counted(8, Verdict.Continue, Matcher.Mask(CtFields.State, U32(CtFields.Invalid), U32(0), negated: true)),
            Counted(9, Verdict.Continue, Matcher.Mask(CtFields.State, U32(CtFields.Established | CtFields.New), U32(0), negated: true)),
            Counted(10, Verdict.Continue, Matcher.Ne(CtFields.State, U32(CtFields.Established))),
            Drop(Matcher.Eq(CtFields.State, U32(CtFields.Invalid)), Matcher.Eq(Fields.Tcp.Dport, U16(81))),
        ]);
        Assert.Equal(NfDrop, p.Run(Tcp4(81)));
        Assert.Equal(NfAccept, p.Run(Tcp4(82)));
        for (ulong id = 1; id <= 7; id++) Assert.Equal(0UL, p.Counter(id).Packets);
        Assert.Equal(0UL, p.Counter(11).Packets);
        Assert.Equal(0UL, p.Counter(12).Packets);
        Assert.Equal(2UL, p.Counter(8).Packets);
        Assert.Equal(0UL, p.Counter(9).Packets);
        Assert.Equal(2UL, p.Counter(10).Packets);
    }

    [Fact]
    public void StateSetsAndVerdictMapsLoad()
    {
        var states = new Backend.Ir.Set("states", CtFields.State, SetData.NoData,
            ValueList.Of(SetElement.Exact(U32(CtFields.Established)), SetElement.Exact(U32(CtFields.Related))));
        var vmap = new Backend.Ir.Set("vm", CtFields.State, SetData.VerdictData,
            ValueList.Of(SetElement.Exact(U32(CtFields.Invalid), Verdict.Drop), SetElement.Exact(U32(CtFields.New), Verdict.Accept)));
        using var p = Load(NfIn4, Verdict.Accept, [
            Accept(Matcher.InSet(CtFields.State, "states")),
            new Rule(Verdict.VMap(CtFields.State, "vm")),
        ], sets: [states, vmap]);
        Assert.Equal(NfDrop, p.Run(Tcp4(80))); // invalid: the vmap drops
    }

    [Fact]
    public void WithoutAnEntryANegatedSetLookupDoesNotMatch()
    {
        var marks = new Backend.Ir.Set("marks", CtFields.Mark, SetData.NoData, ValueList.Of(SetElement.Exact(U32(1))));
        using var p = Load(NfIn4, Verdict.Accept, [
            Counted(1, Verdict.Drop, Matcher.InSet(CtFields.Mark, "marks", negated: true)),
            Counted(2, Verdict.Continue, Matcher.InSet(CtFields.Mark, "marks")),
        ], sets: [marks]);
        Assert.Equal(NfAccept, p.Run(Tcp4(80)));
        Assert.Equal(0UL, p.Counter(1).Packets);
        Assert.Equal(0UL, p.Counter(2).Packets);
    }

    [Fact]
    public void WithoutAnEntryANegatedConcatenationDoesNotMatch()
    {
        var key = new MatchKey(ValueList.Of<Field>(CtFields.Mark, Fields.Tcp.Dport));
        using var p = Load(NfIn4, Verdict.Accept, [
            Counted(1, Verdict.Drop, new Matcher(key, new Compare(CompareOp.Ne, new Value(new byte[] { 0, 0, 0, 1, 0, 80 })))),
            Counted(2, Verdict.Continue, new Matcher(new MatchKey(ValueList.Of<Field>(CtFields.State, Fields.Tcp.Dport)),
                new Compare(CompareOp.Ne, new Value(new byte[] { 0, 0, 0, 2, 0, 80 })))),
        ]);
        Assert.Equal(NfAccept, p.Run(Tcp4(81)));
        Assert.Equal(0UL, p.Counter(1).Packets);
        Assert.Equal(1UL, p.Counter(2).Packets); // state has a value without an entry: invalid != established
    }

    static readonly CtField OrigSrcIp = new(CtReadKey.SrcIp, CtDirection.Original), ReplyDstIp6 = new(CtReadKey.DstIp6, CtDirection.Reply),
        OrigSrc = new(CtReadKey.Src, CtDirection.Original), ReplyProtoDst = new(CtReadKey.ProtoDst, CtDirection.Reply),
        L3Proto = new(CtReadKey.L3Proto), Protocol = new(CtReadKey.Protocol), Expiration = new(CtReadKey.Expiration),
        OrigZone = new(CtReadKey.Zone, CtDirection.Original);

    /// <summary>Every entry and tuple key, in compares, masks, ranges, concatenations, sets and verdict maps.</summary>
    static Rule[] TupleKeyRules() =>
    [
        Counted(1, Verdict.Continue, Matcher.Eq(OrigSrcIp, V4("198.18.0.1"))),
        Counted(2, Verdict.Continue, Matcher.Ne(OrigSrcIp, V4("198.18.0.1"))),
        Counted(3, Verdict.Continue, Matcher.Mask(OrigSrc, V4("255.255.255.0"), V4("198.18.0.0"))),
        Counted(4, Verdict.Continue, Matcher.Ne(ReplyDstIp6, V6("2001:db8::1"))),
        Counted(5, Verdict.Continue, Matcher.Mask(ReplyDstIp6, V6("ffff:ffff::"), V6("2001:db8::"), negated: true)),
        Counted(6, Verdict.Continue, Matcher.Range(ReplyProtoDst, U16(1000), U16(2000))),
        Counted(7, Verdict.Continue, Matcher.Ne(L3Proto, U8(2))),
        Counted(8, Verdict.Continue, Matcher.Ne(Protocol, U8(6))),
        Counted(9, Verdict.Continue, new Matcher(Expiration, new Compare(CompareOp.Gt, U32(1000)))),
        Counted(10, Verdict.Continue, Matcher.Ne(OrigZone, U16(3))),
        Counted(11, Verdict.Continue, new Matcher(new MatchKey(ValueList.Of<Field>(OrigSrcIp, ReplyProtoDst)),
            new Compare(CompareOp.Ne, new Value(new byte[] { 198, 18, 0, 1, 0, 80 })))),
        Counted(12, Verdict.Continue, new Matcher(new MatchKey(ValueList.Of<Field>(ReplyDstIp6, Protocol)),
            new Compare(CompareOp.Ne, new Value(V6("2001:db8::1").Bytes.Add(6))))),
        Counted(13, Verdict.Continue, Matcher.InSet(new MatchKey(ValueList.Of<Field>(OrigSrcIp, ReplyProtoDst)), "flows", negated: true)),
        Counted(14, Verdict.Continue, Matcher.InSet(ReplyDstIp6, "six", negated: true)),
        Counted(15, Verdict.Continue, Matcher.InSet(Label, "labels", negated: true)),
        new Rule(Verdict.VMap(Protocol, "protos")),
        Drop(Matcher.Eq(Fields.Tcp.Dport, U16(81))),
    ];

    static Backend.Ir.Set[] TupleKeySets() =>
    [
        new("flows", new MatchKey(ValueList.Of<Field>(OrigSrcIp, ReplyProtoDst)), SetData.NoData,
            ValueList.Of(new SetElement(ValueList.Of<KeyPart>(new KeyPart.Exact(V4("198.18.0.1")), new KeyPart.Exact(U16(80))), null))),
        new("six", ReplyDstIp6, SetData.NoData, ValueList.Of(SetElement.Exact(V6("2001:db8::1")))),
        new("labels", Label, SetData.NoData, ValueList.Of(SetElement.Exact(Label16(0x20)), SetElement.Exact(Label16(0x80)))),
        new("protos", Protocol, SetData.VerdictData, ValueList.Of(SetElement.Exact(U8(6), Verdict.Drop))),
    ];

    [Fact]
    public void WithoutAnEntryTupleKeysNeverMatch()
    {
        // BPF_PROG_TEST_RUN has no entry: the verifier accepts every key and none matches, whatever the operator
        using var p = Load(NfIn4, Verdict.Accept, TupleKeyRules(), sets: TupleKeySets());
        Assert.Equal(NfDrop, p.Run(Tcp4(81)));
        Assert.Equal(NfAccept, p.Run(Tcp4(82)));
        for (ulong id = 1; id <= 15; id++) Assert.Equal(0UL, p.Counter(id).Packets);
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    public void DeviceProgramsRefuseTupleKeys(string kind)
    {
        var hook = kind == "xdp" ? Xdp : TcIn;
        foreach (var rule in TupleKeyRules()[..^1]) // all but the last read a ct key
        {
            var rs = Ruleset(hook, Verdict.Accept, [rule], sets: TupleKeySets());
            var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items, false));
            Assert.Contains("only available at netfilter hooks", e.Message);
        }
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    public void DeviceProgramsRefuseCt(string kind)
    {
        var hook = kind == "xdp" ? Xdp : TcIn;
        var rs = Ruleset(hook, Verdict.Accept, [Drop(Matcher.Eq(CtFields.State, U32(CtFields.Invalid)))]);
        var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items, false));
        Assert.Contains("only available at netfilter hooks", e.Message);
    }
}
