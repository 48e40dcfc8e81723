using Nft.Engine;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>The NFNLGRP_NFTABLES datagrams of a commit: what, in which order, addressed how, and when none.</summary>
public class NotificationTests
{
    static ushort T(byte msg) => Nfnl.Type(Nfnl.SubsysNftables, msg);

    static List<(NlMsgHeader H, byte[] Bytes)> Events(List<NetlinkEvent> events) => Messages(events.Select(e => e.Datagram));

    [Fact]
    public void ABatchNotifiesEachChangeInBatchOrderThenNewGen()
    {
        var ep = NewEndpoint();
        var events = new List<NetlinkEvent>();
        var replies = ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", w => Counter(w))), Port, events);
        Assert.Empty(replies); // no echo asked: the requester gets nothing
        var m = Events(events);
        Assert.Equal([T(0), T(3), T(6), T(15)], m.Select(x => x.H.Type));
        Assert.Equal([2u, 3u, 4u, 2u], m.Select(x => x.H.Seq)); // NEWGEN carries the first message's seq
        Assert.All(m, x => Assert.Equal(Port, x.H.Pid));
        Assert.Equal(NlmFlags.Create, m[0].H.Flags & (NlmFlags.Create | NlmFlags.Excl));
        Assert.Equal(2u, Be32(Attrs(m[3].Bytes)[1])); // the new generation
        Assert.Equal(Port, Be32(Attrs(m[3].Bytes)[2]));
        Assert.Equal("nft", Str(Attrs(m[3].Bytes)[3]));
        // NEWGEN is an skb of its own; nobody is excluded when nothing was echoed.
        Assert.All(events, e => Assert.Null(e.ExcludePort));
        Assert.Single(Messages([events[^1].Datagram]));
    }

    /// <summary>
    /// A rule whose table is deleted later in the batch is notified as it was applied (its table, chain and the
    /// handle before it then), as one whose table stays is notified from the committed chain: the same names and
    /// positions here.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ARuleIsNotifiedWithItsPositionAlsoWhenItsTableIsDeletedLater(bool deleteTable)
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", w => Counter(w)),
            AddRule(5, "t", "c", w => Counter(w))), Port));
        ulong first = ep.Ruleset.Tables[0].Chains[0].Rules[0].Handle;
        var batch = new List<byte[]>
        {
            AddRule(2, "t", "c", w => Counter(w), position: first), // after the first rule, before the second
            AddRule(3, "t", "c", w => Counter(w)),                  // at the end
        };
        if (deleteTable) batch.Add(Msg(2 /* DELTABLE */, NlmFlags.Request, 4, Ip, w => w.PutString(1, "t")));
        var events = new List<NetlinkEvent>();
        Assert.Empty(ep.Process(Batch(batch.ToArray()), Port, events));
        var rules = Events(events).Where(x => x.H.Type == T(6)).Select(x => Attrs(x.Bytes)).ToList();
        Assert.Equal(2, rules.Count);
        Assert.All(rules, a => Assert.Equal(("t", "c"), (Str(a[1]), Str(a[2]))));
        Assert.Equal(first, Be64(rules[0][6]));
        Assert.False(rules[1].ContainsKey(6));
    }

    [Fact]
    public void NothingIsBuiltWithoutListenersNorForFailedOrEmptyBatches()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t")), Port, null));
        var events = new List<NetlinkEvent>();
        var failed = ep.Process(Batch(AddTable(3, "u"), AddChain(4, "nosuch", "c")), Port, events);
        Assert.Equal(Errno.ENOENT, Error(Assert.Single(failed)).Errno);
        Assert.Empty(events);
        ep.Process(Batch(), Port, events);
        Assert.Empty(events);
    }

    [Fact]
    public void EchoedChangesReachTheRequesterAndEveryoneElse()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port);
        var events = new List<NetlinkEvent>();
        var replies = Messages(ep.Process(Batch(AddRule(9, "t", "c", w => Counter(w), flags: Create | NlmFlags.Append | NlmFlags.Echo)), Port, events));
        Assert.Equal([T(6), T(15)], replies.Select(r => r.H.Type));
        // Multicast leaves the requester out (nlmsg_notify's exclude_portid): it has them as its echo.
        Assert.All(events, e => Assert.Equal(Port, e.ExcludePort));
        Assert.Equal(replies.Select(r => r.Bytes), Events(events).Select(e => e.Bytes));
    }

    [Fact]
    public void DeletingATableNotifiesRulesSetsObjectsChainsThenTheTable()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", w => Counter(w)), AddChain(5, "t", "d")), Port);
        var events = new List<NetlinkEvent>();
        ep.Process(Batch(Msg(2, NlmFlags.Request, 7, Ip, w => w.PutString(1, "t"))), Port, events);
        Assert.Equal([T(8), T(5), T(5), T(2), T(15)], Events(events).Select(x => x.H.Type));
    }

    [Fact]
    public void ABoundChainGoesWithItsRuleUnnotified()
    {
        var ep = NewEndpoint();
        var bound = Msg(3, Create, 4, Ip, w => { w.PutString(1, "t"); w.PutU32Be(10, 4); w.PutU32Be(11, 1); }); // NFT_CHAIN_BINDING
        var setup = ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), bound, AddRule(5, "t", "__chain2", w => Counter(w)),
            AddRule(6, "t", "c", w => Verdict(w, -3, "__chain2"))), Port); // NFT_JUMP
        Assert.Empty(setup);
        var events = new List<NetlinkEvent>();
        ep.Process(Batch(Msg(8, NlmFlags.Request, 7, Ip, w => { w.PutString(1, "t"); w.PutString(2, "c"); })), Port, events);
        Assert.Equal([T(8), T(15)], Events(events).Select(x => x.H.Type)); // only the DELRULE, then NEWGEN
        Assert.Equal(["c"], ep.Ruleset.Tables.Single().Chains.Select(c => c.Name));
        events.Clear();
        ep.Process(Batch(Msg(2, NlmFlags.Request, 9, Ip, w => w.PutString(1, "t"))), Port, events);
        Assert.Equal([T(5), T(2), T(15)], Events(events).Select(x => x.H.Type));
    }

    [Fact]
    public void EachElementOfANewSetElemIsANotificationOfItsOwnInMessageOrder()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewTimeoutSet(3, "t", "s")), Port));
        var events = new List<NetlinkEvent>();
        // two messages of elements, the first echoed, with a table between them
        var replies = Messages(ep.Process(Batch(Elements(5, Create | NlmFlags.Echo, 0x0a000003, 0x0a000001, 0x0a000002),
            AddTable(6, "u"), Elements(7, Create, 0x0a000009)), Port, events));
        var m = Events(events);
        Assert.Equal([T(12), T(12), T(12), T(0), T(12), T(15)], m.Select(x => x.H.Type));
        Assert.Equal([5u, 5u, 5u, 6u, 7u, 5u], m.Select(x => x.H.Seq));
        // each carries its one element, in the message's order (not the set's)
        Assert.Equal([0x0a000003u, 0x0a000001u, 0x0a000002u, 0x0a000009u], m.Where(x => x.H.Type == T(12)).Select(x => OnlyKey(x.Bytes)));
        // the echoed message's three are the requester's echo, then NEWGEN (the first message asked for echoes)
        Assert.Equal([T(12), T(12), T(12), T(15)], replies.Select(r => r.H.Type));
        Assert.Equal(m.Take(3).Select(x => x.Bytes), replies.Take(3).Select(r => r.Bytes));
    }

    static byte[] Elements(uint seq, NlmFlags flags, params uint[] keys) => Msg(12, flags, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "s");
        var list = w.BeginNested(3);
        foreach (var key in keys) Ipv4Element(w, key, end: false);
        w.EndNested(list);
    });

    /// <summary>The key of the single element a NEWSETELEM notification lists.</summary>
    static uint OnlyKey(byte[] msg)
    {
        var list = Attrs(msg)[3];
        var r = new AttributeReader(list, 0);
        Assert.True(r.TryRead(out var elem));
        Assert.False(r.TryRead(out _));
        var key = Attrs2(elem.Payload.ToArray())[1];
        return Be32(Attrs2(key)[1]);
    }

    static Dictionary<ushort, byte[]> Attrs2(byte[] nest)
    {
        var d = new Dictionary<ushort, byte[]>();
        var r = new AttributeReader(nest, 0);
        while (r.TryRead(out var a)) d[a.Type] = a.Payload.ToArray();
        return d;
    }
}
