using System.Net;
using System.Net.Sockets;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// A rule writing @s replaced by one that gives new elements another statement list (scripts/measure-dynset-statement-lists.sh,
/// its first part): the kernel keeps the elements, each with the list it was made with (nft_dynset_new) and its state, and
/// gives new ones the new list. The program loaded anew holds both lists (ElementLists) and the carry rewrites each
/// element's tag. Elements with limits keep their buckets (nft_dynset_new clones the limit into the element): the new
/// program's copies take them from the old copies' bucket map when it has room, else from a larger map of their own the
/// buckets are copied into (BucketCarry).
/// </summary>
[Collection("attach")]
public class ElementListCarryTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);
    static readonly ValueList<Statement> Counter = ValueList.Of<Statement>(new CounterStatement(0));
    static readonly ValueList<Statement> Limit = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 2));

    /// <summary>UDP to 7101: `update @s { ip saddr STATEMENTS }` then drop (a packet the update breaks is accepted by the policy); 7103 with <paramref name="more"/>.</summary>
    static Ruleset Rules(ValueList<Statement> statements, bool more = false, int size = 16)
    {
        var rules = new List<Rule>
        {
            new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(7101))),
                ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(10))), Verdict.Drop),
        };
        if (more) rules.Add(new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(7103)), Matcher.InSet(Fields.Ip.Saddr, "s")), ValueList<Statement>.Empty, Verdict.Drop));
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = size, PacketStatements = statements,
        };
        return new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.ToValueList())), ValueList<Chain>.Empty, ValueList.Of(set));
    }

    static IReadOnlyList<Loader.PacketElementState> State(Enforcer e) => Assert.Single(e.LivePrograms.Single().LiveElements("s")!).State;

    static IReadOnlyList<Loader.PacketElementState> State(Enforcer e, string address) =>
        e.LivePrograms.Single().LiveElements("s")!.Single(x => new Value(x.Key).ToString() == V4(address).ToString()).State;

    static uint BucketMapId(Enforcer e) => Backend.Libbpf.BpfInfo.Map(e.LivePrograms.Single().BucketMap("s")!.Fd.Value).Id;

    static int Buckets(Enforcer e) => e.LivePrograms.Single().BucketMap("s")!.Keys().Count;

    /// <summary>A second client address on the client's device (10.213.x.3).</summary>
    static string SecondClient(VethPair veth)
    {
        var address = veth.ClientAddress[..veth.ClientAddress.LastIndexOf('.')] + ".3";
        veth.ClientNs.Ip("addr", "add", address + "/24", "dev", VethPair.ClientDevice);
        return address;
    }

    /// <summary>One UDP datagram from <paramref name="source"/> to the server's <paramref name="port"/>; true when it arrived.</summary>
    static bool SendUdpFrom(VethPair veth, string source, int port)
    {
        using var server = VethPair.InNamespace(veth.Server, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(veth.ServerAddress), port));
            s.ReceiveTimeout = 700;
            return s;
        });
        using var client = VethPair.InNamespace(veth.Client, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(source), 0));
            return s;
        });
        client.SendTo(new byte[32], new IPEndPoint(IPAddress.Parse(veth.ServerAddress), port));
        try
        {
            return server.Receive(new byte[2048]) == 32;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>`delete element`: a transaction of element changes alone, map updates in the running programs.</summary>
    static void Delete(VethPair veth, Enforcer e, SetElement element) => VethPair.InNamespace(veth.Server, () =>
    {
        Assert.NotNull(e.PrepareElements([new SetChange("s", [], [element])]));
        Assert.Empty(e.Commit());
        return 0;
    });

    [Fact]
    public void AnElementKeepsItsCounterThroughTheReplacementAndANewOneGetsTheNewLimit()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter));
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.Equal(2UL, Assert.Single(State(enforcer)).Packets);

        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit)).Loaded);
        var carried = Assert.Single(State(enforcer));
        Assert.Equal((Statement)Counter[0], carried.Statement);
        Assert.Equal(2UL, carried.Packets);
        // its counter goes on counting; the new rule's limit (burst 2) never runs on it
        for (var i = 0; i < 3; i++) Assert.False(veth.SendUdp(7101));
        Assert.Equal(5UL, Assert.Single(State(enforcer)).Packets);

        // deleted by the control plane and made again: the new rule's list, its third packet breaks the rule
        var client = SetElement.Exact(V4(veth.ClientAddress));
        Delete(veth, enforcer, client);
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7101));
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);

        // a program loaded anew for other rules keeps the set as it is (its bucket too: still spent)
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit, more: true)).Loaded);
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.True(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7103)); // a lookup runs the element's limit too: spent, it breaks the rule

        // the list changes again: the element keeps its limit and its bucket (spent: its packet breaks the rule), as the
        // kernel's element keeps its clone; a new element gets the counter
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter)).Loaded);
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.True(veth.SendUdp(7101));
        var second = SecondClient(veth);
        Assert.False(SendUdpFrom(veth, second, 7101));
        Assert.Equal((Statement)Counter[0], Assert.Single(State(enforcer, second)).Statement);
        Assert.Equal(1UL, State(enforcer, second)[0].Packets);
        Assert.Equal(1, Buckets(enforcer));
    }

    [Fact]
    public void ABucketSpentBeforeTheListChangesStaysSpentAndTheOldBucketsGoWithTheirElements()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        var second = SecondClient(veth);
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit));
        // .1 spends its bucket (burst 2: the third breaks the rule), .3 takes one packet of its own
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7101));
        Assert.False(SendUdpFrom(veth, second, 7101));
        Assert.Equal(2, Buckets(enforcer));
        var buckets = BucketMapId(enforcer);

        // replaced by a rule giving a counter, in a transaction that deletes .3: .1 keeps its limit and spent bucket in the
        // same bucket map, .3's bucket goes with it (the sweep once the old copies are gone)
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter), new SetChange("s", [], [SetElement.Exact(V4(second))])).Loaded);
        Assert.Equal(buckets, BucketMapId(enforcer));
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.Equal(1, Buckets(enforcer));
        Assert.True(veth.SendUdp(7101));
        // .3 made again: the new list
        Assert.False(SendUdpFrom(veth, second, 7101));
        Assert.Equal((Statement)Counter[0], Assert.Single(State(enforcer, second)).Statement);

        // back to the limit: .1 still runs its own (spent), .3 keeps its counter, and the lists are the two they carry
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit, more: true)).Loaded);
        Assert.True(veth.SendUdp(7101));
        Assert.False(SendUdpFrom(veth, second, 7101));
        Assert.Equal(2UL, State(enforcer, second)[0].Packets);
        Assert.Equal([Limit, Counter], enforcer.LivePrograms.Single().Compiled.SetLayouts["s"].Set.ElementLists);
        Assert.Equal(buckets, BucketMapId(enforcer));
    }

    [Fact]
    public void AnotherSizeKeepsTheBucketsInTheMapWhenItHasRoomElseInALargerOne()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit));
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7101));
        var buckets = BucketMapId(enforcer);
        // another list and a smaller size (other copies, the element carried with its stamp), the same bucket map (room
        // for 2 x 8 + 1024): the element keeps its limit and its bucket, still spent
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter, size: 8)).Loaded);
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.Equal(buckets, BucketMapId(enforcer));
        Assert.True(veth.SendUdp(7101));

        // a larger size with another list: the map (2 x 16 + 1024 buckets, as first made) has no room for 2 x 600 + 1024,
        // so the new copies get a larger one and the bucket is copied into it: the element keeps its limit, still spent
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit, size: 600)).Loaded);
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.NotEqual(buckets, BucketMapId(enforcer));
        Assert.Equal(2 * 600 + 1024, enforcer.LivePrograms.Single().BucketMap("s")!.MaxEntries);
        Assert.True(veth.SendUdp(7101));
        // a larger size with the same list (and another rule, so loaded anew): carried with its stamp and its bucket
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit, more: true, size: 2000)).Loaded);
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.True(veth.SendUdp(7101));
        Assert.Equal(1, Buckets(enforcer));
    }

    [Fact]
    public void AListWithMoreLimitsThanTheMapWasMadeForKeepsTheElementsAndTheirBuckets()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        var second = SecondClient(veth);
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit));
        // .1 spends its bucket, .3 takes one of its two tokens
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7101));
        Assert.False(SendUdpFrom(veth, second, 7101));
        var buckets = BucketMapId(enforcer);
        // two limits a new element: the map (2 x 1 x 16 + 1024) has no room for 2 x 2 x 16 + 1024, the copies get a larger one
        var two = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 3), new LimitStatement(1, TimeSpan.FromHours(1), 5));
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(two)).Loaded);
        Assert.NotEqual(buckets, BucketMapId(enforcer));
        Assert.Equal([Limit, two], enforcer.LivePrograms.Single().Compiled.SetLayouts["s"].Set.ElementLists);
        // each keeps its own limit and bucket: .1 spent, .3 with its last token
        Assert.Equal(Limit[0], Assert.Single(State(enforcer, veth.ClientAddress)).Statement);
        Assert.True(veth.SendUdp(7101));
        Assert.False(SendUdpFrom(veth, second, 7101));
        Assert.True(SendUdpFrom(veth, second, 7101));
        Assert.Equal(2, Buckets(enforcer));
    }

    [Fact]
    public void ARecompileDropsAListNoLiveElementCarries()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter));
        Assert.False(veth.SendUdp(7101));
        // replaced by a rule giving none: the element keeps its counter, new ones would run none
        PacketPathCarryTests.Commit(veth, enforcer, Rules(default));
        Assert.False(veth.SendUdp(7101));
        Assert.Equal(2UL, Assert.Single(State(enforcer)).Packets);
        var lists = enforcer.LivePrograms.Single().Compiled.SetLayouts["s"].Set.ElementLists;
        Assert.Equal(Counter, Assert.Single(lists));
        // the element deleted, the next recompile holds no list: compiled as a set without statements
        var client = SetElement.Exact(V4(veth.ClientAddress));
        Delete(veth, enforcer, client);
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(default, more: true)).Loaded);
        Assert.Empty(enforcer.LivePrograms.Single().Compiled.SetLayouts["s"].Set.ElementLists);
        Assert.False(veth.SendUdp(7101));
        Assert.Empty(State(enforcer));
    }
}
