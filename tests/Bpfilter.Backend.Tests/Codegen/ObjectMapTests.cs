using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Object maps in BPF (BPF_PROG_TEST_RUN), nft_objref_map_eval: the source address picks the named
/// object through a map; a miss breaks to the next rule, a hit runs that object's counter, quota or
/// limit in the object's own slot (shared with every rule naming it), which may break in turn.
/// </summary>
public class ObjectMapTests
{
    static readonly MatchKey Saddr = new(Fields.Ip.Saddr);
    static byte[] From(string saddr) => PacketBuilder.Ether().Ipv4(saddr, "198.18.0.2").Udp(1234, 53);
    static readonly ulong Len = (ulong)From("198.19.0.1").Length - 14;

    static Backend.Ir.Set Map(params (string Saddr, Statement Object)[] elements) =>
        new("t/om", Saddr, SetData.ObjectData, elements.Select(e =>
            SetElement.Exact(V4(e.Saddr)) with { Statements = ValueList.Of(e.Object) }).ToValueList());

    static Rule ByMap(Verdict v, params Statement[] objects) =>
        new(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new ObjectMapStatement(Saddr, "t/om", objects.ToValueList())), v);

    [Fact]
    public void ACounterMapCountsTheNamedObjectAndAMissBreaksToTheNextRule()
    {
        Statement c1 = new CounterStatement(10), c2 = new CounterStatement(11), unused = new CounterStatement(12);
        using var p = Load(Xdp, Verdict.Accept, [ByMap(Verdict.Drop, c1, c2, unused), Counted(20, Verdict.Accept)],
            sets: [Map(("198.19.0.1", c1), ("198.19.0.2", c2))]);
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(XdpPass, p.Run(From("198.19.0.3"))); // not in the map: NFT_BREAK, the next rule accepts
        Assert.Equal(2UL, p.Counter(10).Packets);
        Assert.Equal(1UL, p.Counter(11).Packets);
        Assert.Equal(0UL, p.Counter(12).Packets);
        Assert.Equal(1UL, p.Counter(20).Packets);
    }

    [Fact]
    public void AQuotaMapRunsEachObjectsQuotaOnItsOwnSlot()
    {
        var until = new QuotaStatement(2 * Len, Over: false, StateSlot: 3);
        var over = new QuotaStatement(Len, Over: true, StateSlot: 4);
        using var p = Load(NfIn4, Verdict.Accept, [ByMap(Verdict.Drop, until, over)],
            sets: [Map(("198.19.0.1", until), ("198.19.0.2", over))]);
        Assert.Equal(NfDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(NfDrop, p.Run(From("198.19.0.1")));
        Assert.Equal(NfAccept, p.Run(From("198.19.0.1"))); // consumed 3 * len > 2 * len: `until` breaks
        Assert.Equal(NfAccept, p.Run(From("198.19.0.2"))); // consumed len, not over len: `over` breaks
        Assert.Equal(NfDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(NfAccept, p.Run(From("198.19.0.9")));
        Assert.Equal(3 * Len, p.Quotas!.Read(3));
        Assert.Equal(2 * Len, p.Quotas.Read(4));
    }

    [Fact]
    public void ALimitMapTakesFromTheNamedBucketAndTwoElementsNamingOneObjectShareIt()
    {
        var limit = new LimitStatement(1, TimeSpan.FromMinutes(1), 2) { StateSlot = 0 };
        using var p = Load(TcIn, Verdict.Accept, [ByMap(Verdict.Drop, limit)],
            sets: [Map(("198.19.0.1", limit), ("198.19.0.2", limit))]);
        Assert.Equal(TcShot, p.Run(From("198.19.0.1")));
        Assert.Equal(TcShot, p.Run(From("198.19.0.2")));
        Assert.Equal(TcOk, p.Run(From("198.19.0.1"))); // the burst of 2 is spent: the limit breaks
    }

    [Fact]
    public void AnElementNamingAnotherCompiledObjectIsAMapUpdateAndAnUnknownObjectNeedsAReload()
    {
        Statement c1 = new CounterStatement(1), c2 = new CounterStatement(2);
        using var p = Load(Xdp, Verdict.Accept, [ByMap(Verdict.Drop, c1, c2)], sets: [Map(("198.19.0.1", c1))]);
        Assert.Equal(XdpPass, p.Run(From("198.19.0.2")));
        Assert.True(p.AddElement("t/om", SetElement.Exact(V4("198.19.0.2")) with { Statements = ValueList.Of(c2) }));
        Assert.Equal(XdpDrop, p.Run(From("198.19.0.2")));
        Assert.Equal(1UL, p.Counter(2).Packets);
        var e = Assert.Throws<CodegenException>(() =>
            p.AddElement("t/om", SetElement.Exact(V4("198.19.0.3")) with { Statements = ValueList.Of<Statement>(new CounterStatement(3)) }));
        Assert.Contains("needs a reload", e.Message);
    }

    [Fact]
    public void AnObjectMapIsPartOfTheSourceItsAttachPointIsCompiledFrom()
    {
        Statement c1 = new CounterStatement(1), c2 = new CounterStatement(2);
        var a = Ruleset(Xdp, Verdict.Accept, [ByMap(Verdict.Drop, c1, c2)], sets: [Map(("198.19.0.1", c1))]);
        var b = a with { Sets = ValueList.Of(Map(("198.19.0.1", c2))) };
        Assert.NotEqual(Backend.Enforcement.UnitSource.Of(a, a.BaseChains.Items), Backend.Enforcement.UnitSource.Of(b, b.BaseChains.Items));
    }
}
