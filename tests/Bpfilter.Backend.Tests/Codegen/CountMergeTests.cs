using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// The counter merge by difference of PacketPathCarry.After: between Before (the old copies' elements copied to the new
/// program's) and the swap the old program still counts on the old copies, and once the new program has counted on the
/// same element its value is kept: the old program's counting since the copy is added to it (CountMerge), as the kernel's
/// one element counts every packet. BPF_PROG_TEST_RUN: the "swap" is which program runs the packet.
/// </summary>
public class CountMergeTests
{
    private static byte[] Udp4(string src, int payload = 30) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Udp(40000, 22, payload);

    static readonly ValueList<Statement> Counter = ValueList.Of<Statement>(new CounterStatement(0));
    static readonly ValueList<Statement> CounterQuota = ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(100_000, false, 0));

    private static Backend.Ir.Set Counted(ValueList<Statement> statements, params ValueList<Statement>[] lists) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = statements, PacketStatementLists = lists.ToValueList(),
        };

    private static readonly Rule Update = new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(22))),
        ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(10))), Verdict.Drop);

    private static IReadOnlyList<PacketElementState> State(LoadedProgram p, string addr) =>
        p.LiveElements("s")!.Single(e => new Value(e.Key).ToString() == V4(addr).ToString()).State;

    [Fact]
    public void WhatTheOldProgramCountedAfterTheCopyIsAddedToWhatTheNewOneCounted()
    {
        using var before = Load(Xdp, Verdict.Accept, [Update], sets: [Counted(CounterQuota)]);
        Assert.Equal(XdpDrop, before.Run(Udp4("198.18.0.1")));
        Assert.Equal(XdpDrop, before.Run(Udp4("198.18.0.3")));
        // another list for new elements: other copies, the elements carried with their tag rewritten
        using var p = Load(Xdp, Verdict.Accept, [Update], sets: [Counted(Counter, CounterQuota, Counter)]);
        Assert.False(p.SharesSet(before, "s"));
        var carry = PacketPathCarry.Before(before, p, new Dictionary<string, SetChange>(), new HashSet<string>())!;
        // the old program counts .1 twice after the copy, the new one once; .3 only the old one, once
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, before.Run(Udp4("198.18.0.1", 40)));
        Assert.Equal(XdpDrop, p.Run(Udp4("198.18.0.1")));
        Assert.Equal(XdpDrop, before.Run(Udp4("198.18.0.3")));
        carry.After();
        var one = State(p, "198.18.0.1");
        Assert.Equal(4UL, one[0].Packets);
        // .3's two packets of 30 bytes of data (no frame padding) say what one counts; .1 had two of them and two with 10 bytes more
        var three = State(p, "198.18.0.3");
        Assert.Equal(2UL, three[0].Packets);
        var bytes = 2 * three[0].Bytes + 20;
        Assert.Equal(bytes, one[0].Bytes);
        Assert.Equal(bytes, one[1].Bytes);
        // both copies hold it: the next packet counts on from there
        Assert.Equal(XdpDrop, p.Run(Udp4("198.18.0.1")));
        Assert.Equal(5UL, State(p, "198.18.0.1")[0].Packets);
        foreach (var copy in new[] { 0, 1 })
        {
            var value = new byte[p.SetMapCopy("s", copy)!.ValueSize];
            Assert.True(p.SetMapCopy("s", copy)!.TryLookup(V4("198.18.0.1").Bytes.AsSpan(), value));
        }
    }

    [Fact]
    public void AnElementTheNewProgramMadeAgainGetsNothingOfTheOldOne()
    {
        using var before = Load(Xdp, Verdict.Accept, [Update], sets: [Counted(Counter)]);
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, before.Run(Udp4("198.18.0.1")));
        using var p = Load(Xdp, Verdict.Accept, [Update], sets: [Counted(CounterQuota, Counter, CounterQuota)]);
        var carry = PacketPathCarry.Before(before, p, new Dictionary<string, SetChange>(), new HashSet<string>())!;
        Assert.Equal(XdpDrop, before.Run(Udp4("198.18.0.1")));
        // deleted from the new copies and made again by the new program: the new list, its own counts
        p.DeletePacketPath("s", V4("198.18.0.1").Bytes.ToArray());
        Assert.Equal(XdpDrop, p.Run(Udp4("198.18.0.1")));
        carry.After();
        var state = State(p, "198.18.0.1");
        Assert.Equal(2, state.Count);
        Assert.Equal(1UL, state[0].Packets);
    }
}
