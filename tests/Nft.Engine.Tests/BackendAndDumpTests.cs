using Nft.Engine;
using Nft.Engine.Model;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>The backend seam (prepare/commit/abort, refusals, counters) and dump framing.</summary>
public class BackendAndDumpTests
{
    sealed class RecordingBackend : IRulesetBackend
    {
        public readonly List<string> Calls = new();
        public readonly List<RulesetChange> Changes = new();
        public Func<IReadOnlyList<SourceTable>, Exception?> Refuse = _ => null;
        public CounterValue? Live;
        public readonly List<CounterRef> Resets = new();

        public void Prepare(RulesetChange change)
        {
            Calls.Add("prepare");
            Changes.Add(change);
            if (Refuse(change.Tables) is { } e) throw e;
        }

        public void Commit() => Calls.Add("commit");
        public void Abort() => Calls.Add("abort");
        public CounterValue? ReadCounter(CounterRef c) => Live;
        /// <summary>What the data plane counted for every element; gone once a commit that removes elements is done.</summary>
        public CounterValue? ElementLive;
        public CounterValue? ReadElementCounter(ElementCounterRef e) => ElementLive;
        public void ResetCounter(CounterRef c) => Resets.Add(c);
    }

    static byte[] NewSet(uint seq, string table, string name) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, table);
        w.PutString(2, name);
        w.PutU32Be(4, 7);
        w.PutU32Be(5, 4);
        w.PutU32Be(10, seq);
    });

    static byte[] AddElement(uint seq, string table, string set, byte[] key) => MapElement(12, seq, table, set, key, null);

    [Fact]
    public void CommitGoesThroughPrepareThenCommitAndElementOnlyBatchesAreMarked()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewSet(3, "t", "s"), AddElement(4, "t", "s", [10, 0, 0, 1])), Port));
        Assert.Empty(ep.Process(Batch(AddElement(2, "t", "s", [10, 0, 0, 2])), Port));
        Assert.Equal(new[] { "prepare", "commit", "prepare", "commit" }, be.Calls);
        Assert.False(be.Changes[0].ElementsOnly);
        Assert.True(be.Changes[1].ElementsOnly);
        var delta = Assert.Single(be.Changes[1].SetDeltas);
        Assert.Equal((Ip, "t", "s"), (delta.Family, delta.Table, delta.Set));
        Assert.Equal(new byte[] { 10, 0, 0, 2 }, Assert.IsType<Nft.Bytecode.Data.ValueData>(Assert.Single(delta.Added).Key).Value);
        Assert.Empty(delta.Removed);
        Assert.Equal(2, ep.Ruleset.Tables[0].Sets[0].Elements.Count);
    }

    static byte[] NewMap(uint seq, string table, string name) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, table);
        w.PutString(2, name);
        w.PutU32Be(3, 0x8); // NFT_SET_MAP
        w.PutU32Be(4, 7);
        w.PutU32Be(5, 4);
        w.PutU32Be(6, 7);
        w.PutU32Be(7, 4);
        w.PutU32Be(10, seq);
    });

    /// <summary>
    /// NEWSETELEM (12) or DELSETELEM (14) of one element, with a map value and a timeout (ms) when given, and
    /// `counter packets P bytes B` (NFTA_SET_ELEM_EXPR) when <paramref name="counter"/> is given.
    /// </summary>
    static byte[] MapElement(byte type, uint seq, string table, string set, byte[] key, byte[]? value, ulong? timeoutMs = null,
        (ulong Packets, ulong Bytes)? counter = null) =>
        Msg(type, type == 12 ? Create : NlmFlags.Request, seq, Ip, w =>
        {
            w.PutString(1, table);
            w.PutString(2, set);
            var list = w.BeginNested(3);
            var el = w.BeginNested(1);
            var k = w.BeginNested(1);
            w.PutBytes(1, key);
            w.EndNested(k);
            if (value != null)
            {
                var d = w.BeginNested(2);
                w.PutBytes(1, value);
                w.EndNested(d);
            }
            if (timeoutMs is ulong t) w.PutBytes(4, [.. BitConverter.GetBytes(t).Reverse()]);
            if (counter is var (p, b)) Counter(w, p, b, attr: 7);
            w.EndNested(el);
            w.EndNested(list);
        });

    [Fact]
    public void ADeletedElementIsNotifiedWithItsCounterAsCountedSoFar()
    {
        // the kernel: `delete element ip t s { 127.0.0.1 counter packets 6 bytes 312 }` after 6 packets, on 6.18
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        byte[] x = [10, 0, 0, 1];
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewSet(3, "t", "s"), MapElement(12, 4, "t", "s", x, null, counter: (2, 100))), Port));
        be.ElementLive = new CounterValue(4, 212);
        var events = new List<NetlinkEvent>();
        Assert.Empty(ep.Process(Batch(MapElement(14, 2, "t", "s", x, null)), Port, events));
        var del = Messages(events.Select(e => e.Datagram)).First(m => m.H.Type == Nfnl.Type(Nfnl.SubsysNftables, 14));
        var r = new AttributeReader(Attrs(del.Bytes)[3], 0);
        Assert.True(r.TryRead(out var first));
        var elem = Nft.Bytecode.Objects.SetElement.Decode(first);
        var counter = Assert.IsType<Nft.Bytecode.Expressions.CounterExpr>(elem.Expr);
        Assert.Equal((6ul, 312ul), (counter.Packets!.Value, counter.Bytes!.Value));
    }

    /// <summary>
    /// A set deleted and added back in one batch, with its table or alone, is another object (another handle): the backend
    /// is told, so nothing the data plane held for the old one is kept. A set created where none was is not.
    /// </summary>
    [Fact]
    public void ASetDeletedAndAddedBackInOneBatchIsNamedRecreated()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewSet(3, "t", "s")), Port));
        Assert.Empty(be.Changes[^1].RecreatedSets);
        var deleteTable = Msg(2, NlmFlags.Request, 2, Ip, w => w.PutString(1, "t"));
        Assert.Empty(ep.Process(Batch(deleteTable, AddTable(3, "t"), NewSet(4, "t", "s"), NewSet(5, "t", "new")), Port));
        Assert.Equal([(Ip, "t", "s")], be.Changes[^1].RecreatedSets);
        var deleteSet = Msg(11, NlmFlags.Request, 2, Ip, w => { w.PutString(1, "t"); w.PutString(2, "s"); });
        Assert.Empty(ep.Process(Batch(deleteSet, NewSet(3, "t", "s")), Port));
        Assert.Equal([(Ip, "t", "s")], be.Changes[^1].RecreatedSets);
    }

    /// <summary>
    /// A named object deleted and added back in one batch, with its table or alone, is another object: the backend is told
    /// (its quota's `used`, its limit's bucket start anew). One kept, one created where none was, and one of another type
    /// by the same name are not.
    /// </summary>
    [Fact]
    public void AnObjectDeletedAndAddedBackInOneBatchIsNamedRecreated()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        byte[] Quota(uint seq, string name) => NewObj(seq, name, 2, w => { w.PutU64Be(1, 1000); w.PutU32Be(2, 0); });
        byte[] Counter(uint seq, string name) => NewObj(seq, name, 1, w => { w.PutU64Be(1, 0); w.PutU64Be(2, 0); });
        byte[] DeleteQuota(uint seq, string name) => Msg(20, NlmFlags.Request, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, name);
            w.PutU32Be(3, 2);
        });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), Quota(3, "q"), Quota(4, "kept"), Counter(5, "q")), Port));
        Assert.Empty(be.Changes[^1].RecreatedObjects);
        Assert.Empty(ep.Process(Batch(DeleteQuota(2, "q"), Quota(3, "q"), Quota(4, "new")), Port));
        Assert.Equal([(Ip, "t", "q", 2u)], be.Changes[^1].RecreatedObjects);
        var deleteTable = Msg(2, NlmFlags.Request, 2, Ip, w => w.PutString(1, "t"));
        Assert.Empty(ep.Process(Batch(deleteTable, AddTable(3, "t"), Quota(4, "q")), Port));
        Assert.Equal([(Ip, "t", "q", 2u)], be.Changes[^1].RecreatedObjects);
    }

    /// <summary>
    /// An element deleted and added back unchanged in one batch is another element (its counter, quota and limit start
    /// anew): the backend is told, and the change is not an elements-only one (no delta names it). One added again
    /// without deletion, or deleted for good, is not renewed, nor one without statements (nothing could tell).
    /// </summary>
    [Fact]
    public void AnElementDeletedAndAddedBackInOneBatchIsNamedRenewed()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        byte[] x = [10, 0, 0, 1], y = [10, 0, 0, 2];
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewSet(3, "t", "s"), MapElement(12, 4, "t", "s", x, null, counter: (0, 0)),
            MapElement(12, 5, "t", "s", y, null, counter: (0, 0))), Port));
        Assert.Empty(be.Changes[^1].RenewedElements);
        Assert.Empty(ep.Process(Batch(MapElement(14, 2, "t", "s", x, null), MapElement(12, 3, "t", "s", x, null, counter: (0, 0)),
            MapElement(12, 4, "t", "s", y, null, counter: (0, 0))), Port));
        var renewed = Assert.Single(be.Changes[^1].RenewedElements);
        Assert.Equal((Ip, "t", "s"), (renewed.Family, renewed.Table, renewed.Set));
        Assert.Equal(new Nft.Bytecode.Data.ValueData(x), renewed.Element.Key);
        Assert.False(be.Changes[^1].ElementsOnly);
        Assert.Empty(ep.Process(Batch(MapElement(14, 2, "t", "s", y, null)), Port));
        Assert.Empty(be.Changes[^1].RenewedElements);
        Assert.True(be.Changes[^1].ElementsOnly);
    }

    /// <summary>
    /// An element whose timeout has expired is gone for the kernel (6.18): adding its key again makes a new element,
    /// renewed as one deleted and added back; adding a live one again only renews its timeout, the same element.
    /// </summary>
    [Fact]
    public void AnExpiredElementAddedAgainIsNamedRenewed()
    {
        var be = new RecordingBackend();
        long now = 1_000_000;
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft"), Clock = () => now });
        byte[] x = [10, 0, 0, 1], y = [10, 0, 0, 2];
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewTimeoutSet(3, "t", "s"), MapElement(12, 4, "t", "s", x, null, 2_000, counter: (0, 0)),
            MapElement(12, 5, "t", "s", y, null, 60_000, counter: (0, 0))), Port));
        now += 3_000;
        Assert.Empty(ep.Process(Batch(MapElement(12, 2, "t", "s", x, null, 2_000, counter: (0, 0)),
            MapElement(12, 3, "t", "s", y, null, 60_000, counter: (0, 0))), Port));
        var renewed = Assert.Single(be.Changes[^1].RenewedElements);
        Assert.Equal(new Nft.Bytecode.Data.ValueData(x), renewed.Element.Key);
        Assert.False(be.Changes[^1].ElementsOnly);
    }

    [Fact]
    public void ElementDeltasCompareEachKeyBeforeAndAfterTheBatch()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        byte[] x = [10, 0, 0, 1], one = [1, 1, 1, 1], two = [2, 2, 2, 2];
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewMap(3, "t", "m"), MapElement(12, 4, "t", "m", x, one)), Port));
        byte[] Value(Nft.Bytecode.Objects.SetElement e) => Assert.IsType<Nft.Bytecode.Data.ValueData>(e.Data).Value;

        // removed and added back with another value: the key's value changes (an upsert, nothing removed)
        Assert.Empty(ep.Process(Batch(MapElement(14, 2, "t", "m", x, null), MapElement(12, 3, "t", "m", x, two)), Port));
        var changed = Assert.Single(be.Changes[^1].SetDeltas);
        Assert.True(be.Changes[^1].ElementsOnly);
        Assert.Equal(two, Value(Assert.Single(changed.Added)));
        Assert.Empty(changed.Removed);

        // removed and added back as it was: nothing to do
        Assert.Empty(ep.Process(Batch(MapElement(14, 2, "t", "m", x, null), MapElement(12, 3, "t", "m", x, two)), Port));
        Assert.Empty(be.Changes[^1].SetDeltas);

        // removed, added back with another value, removed again: the value before the batch goes
        Assert.Empty(ep.Process(Batch(MapElement(14, 2, "t", "m", x, null), MapElement(12, 3, "t", "m", x, one),
            MapElement(14, 4, "t", "m", x, null)), Port));
        var removed = Assert.Single(be.Changes[^1].SetDeltas);
        Assert.Empty(removed.Added);
        Assert.Equal(two, Value(Assert.Single(removed.Removed)));
        Assert.Empty(ep.Ruleset.Tables[0].Sets[0].Elements);
    }

    [Fact]
    public void AnElementWhoseTimeoutABatchRenewsAndThenDeletesIsRemoved()
    {
        var be = new RecordingBackend();
        long now = 1_000_000;
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft"), Clock = () => now });
        byte[] x = [10, 0, 0, 1], y = [10, 0, 0, 2];
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewTimeoutSet(3, "t", "s"), MapElement(12, 4, "t", "s", x, null, 10_000)), Port));
        now += 5_000;
        // x renewed (a new expiry), y added, x deleted: the maps lose x, as the set does
        Assert.Empty(ep.Process(Batch(MapElement(12, 2, "t", "s", x, null, 10_000), MapElement(12, 3, "t", "s", y, null, 10_000),
            MapElement(14, 4, "t", "s", x, null)), Port));
        Assert.True(be.Changes[^1].ElementsOnly);
        var delta = Assert.Single(be.Changes[^1].SetDeltas);
        Assert.Equal(y, Assert.IsType<Nft.Bytecode.Data.ValueData>(Assert.Single(delta.Added).Key).Value);
        Assert.Equal(x, Assert.IsType<Nft.Bytecode.Data.ValueData>(Assert.Single(delta.Removed).Key).Value);
        Assert.Equal(y, Assert.Single(ep.Ruleset.Tables[0].Sets[0].Elements).Id.Key);
    }

    [Fact]
    public void AFullSetTakesANewElementOnceOthersHaveExpired()
    {
        // the kernel (6.18): `size 2; flags timeout`, two elements with `timeout 1s`, a third refused at once
        // (ENFILE) and taken 3 s later, when its garbage collection has removed the expired two
        var be = new RecordingBackend();
        long now = 1_000_000;
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft"), Clock = () => now });
        byte[] x = [10, 0, 0, 1], y = [10, 0, 0, 2], z = [10, 0, 0, 3];
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewTimeoutSet(3, "t", "s", size: 2), MapElement(12, 4, "t", "s", x, null, 1_000), MapElement(12, 5, "t", "s", y, null, 1_000)), Port));
        var full = Messages(ep.Process(Batch(AddElement(2, "t", "s", z)), Port));
        Assert.Equal(Errno.ENFILE, Error(Assert.Single(full).Bytes).Errno);
        now += 3_000;
        Assert.Empty(ep.Process(Batch(AddElement(2, "t", "s", z)), Port));
        var delta = Assert.Single(be.Changes[^1].SetDeltas);
        Assert.Equal(z, Assert.IsType<Nft.Bytecode.Data.ValueData>(Assert.Single(delta.Added).Key).Value);
        Assert.Equal(new[] { x, y }, delta.Removed.Select(e => Assert.IsType<Nft.Bytecode.Data.ValueData>(e.Key).Value).OrderBy(k => k[3]));
        Assert.Equal(z, Assert.Single(ep.Ruleset.Tables[0].Sets[0].Elements).Id.Key);
    }

    [Fact]
    public void BackendRefusalAbortsAndBlamesTheRuleMessage()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port);
        be.Refuse = next => next[0].Chains[0].Rules.Count > 0
            ? new BackendRefusal(Errno.EOPNOTSUPP, "cannot enforce", Ip, "t", "c", next[0].Chains[0].Rules[^1].Handle)
            : null;
        var ok = AddRule(5, "t", "c", w => Counter(w));
        var refused = AddRule(6, "t", "c", w => Verdict(w, 0));
        var replies = Messages(ep.Process(Batch(ok, refused), Port));
        var (h, bytes) = Assert.Single(replies);
        Assert.Equal(6u, h.Seq);
        Assert.Equal(Errno.EOPNOTSUPP, Error(bytes).Errno);
        Assert.Contains("cannot enforce", System.Text.Encoding.ASCII.GetString(bytes));
        Assert.Equal("abort", be.Calls[^1]);
        Assert.Empty(ep.Ruleset.Tables[0].Chains[0].Rules);
        Assert.Equal(2u, ep.Generation);
    }

    [Fact]
    public void RuleDumpCarriesHandlePositionAndLiveCounters()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"),
            AddRule(4, "t", "c", w => Verdict(w, 1)), AddRule(5, "t", "c", w => Counter(w, 3, 300))), Port);
        be.Live = new CounterValue(10, 1000);
        var msgs = Messages(ep.Process(Dump(25 /* GETRULE_RESET */, Ip), Port));
        Assert.Equal(3, msgs.Count);
        Assert.Equal(NlMsgType.Done, msgs[^1].H.Type);
        Assert.All(msgs.Take(2), m => Assert.Equal(NlmFlags.Multi | NlmFlags.Append, m.H.Flags));
        var first = Attrs(msgs[0].Bytes);
        var second = Attrs(msgs[1].Bytes);
        Assert.Equal(2ul, Be64(first[3]));
        Assert.False(first.ContainsKey(6));
        Assert.Equal(3ul, Be64(second[3]));
        Assert.Equal(2ul, Be64(second[6])); // position: the rule before
        // counter: BYTES then PACKETS inside the expression's data, stored + live
        var counterData = second[4].AsSpan(4 + 12 + 4).ToArray(); // elem hdr, name "counter\0", data hdr
        Assert.Equal(1300ul, Be64(counterData.AsSpan(4, 8).ToArray()));
        Assert.Equal(13ul, Be64(counterData.AsSpan(16, 8).ToArray()));
        Assert.Single(be.Resets);
        // reset zeroed the emulated part; the backend's part is its own to zero
        be.Live = null;
        var again = Attrs(Messages(ep.Process(Dump(7, Ip), Port))[1].Bytes);
        Assert.Equal(0ul, Be64(again[4].AsSpan(4 + 12 + 4 + 4, 8).ToArray()));
    }

    [Fact]
    public void AReplacedRuleCountsFromZeroAsTheKernelsNewRuleDoes()
    {
        var be = new RecordingBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", w => Counter(w, 0, 0))), Port);
        Assert.Empty(be.Resets);
        // replace rule ip t c handle 2: verdict, then a counter (expression 1)
        ep.Process(Batch(AddRule(2, "t", "c", w => { Verdict(w, 1); Counter(w, 0, 0); }, flags: NlmFlags.Request | NlmFlags.Replace, handle: 2)), Port);
        var reset = Assert.Single(be.Resets);
        Assert.Equal(new CounterRef(Ip, "t", "c", 2, 1, null), reset);
        // a batch that replaces and then deletes the rule resets nothing
        ep.Process(Batch(AddRule(2, "t", "c", w => Counter(w, 0, 0), flags: NlmFlags.Request | NlmFlags.Replace, handle: 2),
            Msg(8 /* DELRULE */, NlmFlags.Request, 3, Ip, w => { w.PutString(1, "t"); w.PutString(2, "c"); w.PutU64Be(3, 2); })), Port);
        Assert.Single(be.Resets);
        Assert.Empty(ep.Ruleset.Tables[0].Chains[0].Rules);
    }

    [Fact]
    public void LargeDumpsComeInWholeMessageChunksEndingWithDone()
    {
        var ep = NewEndpoint();
        var msgs = new List<byte[]> { AddTable(2, "t"), AddChain(3, "t", "c") };
        for (int i = 0; i < 2000; i++) msgs.Add(AddRule((uint)(10 + i), "t", "c", w => { Counter(w); Verdict(w, 1); }));
        Assert.Empty(ep.Process(Batch(msgs.ToArray()), Port));
        var datagrams = ep.Process(Dump(7, Ip), Port);
        Assert.True(datagrams.Count > 3);
        Assert.All(datagrams.Take(datagrams.Count - 1), d => Assert.InRange(d.Length, 1, DaemonFrame.DumpChunk));
        var all = Messages(datagrams);
        Assert.Equal(2001, all.Count);
        Assert.Equal(NlMsgType.Done, all[^1].H.Type);
        Assert.Single(Messages([datagrams[^1]])); // DONE alone
        Assert.Equal(Enumerable.Range(2, 2000).Select(i => (ulong)i), all.Take(2000).Select(m => Be64(Attrs(m.Bytes)[3])));
    }

    [Fact]
    public void SecondDumpInTheSameSendIsBusy()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t")), Port);
        var both = Dump(1).Concat(Dump(1)).ToArray();
        var datagrams = ep.Process(both, Port);
        var all = Messages(datagrams);
        Assert.Equal(3, all.Count);
        Assert.Equal(Nfnl.Type(Nfnl.SubsysNftables, 0), all[0].H.Type);
        Assert.Equal(Errno.EBUSY, Error(all[1].Bytes).Errno);
        Assert.Equal(NlMsgType.Done, all[2].H.Type);
    }

    [Fact]
    public void SetElementDumpEndsWithAnEmptyMessageAndDone()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), NewSet(3, "t", "s"), AddElement(4, "t", "s", [1, 2, 3, 4])), Port);
        var dump = Dump(13, Ip, w => { w.PutString(1, "t"); w.PutString(2, "s"); });
        var datagrams = ep.Process(dump, Port);
        Assert.Equal(2, datagrams.Count);
        var first = Assert.Single(Messages([datagrams[0]]));
        Assert.True(Attrs(first.Bytes).ContainsKey(3));
        var second = Messages([datagrams[1]]);
        Assert.Equal(2, second.Count);
        Assert.Empty(Attrs(second[0].Bytes)[3]); // NFTA_SET_ELEM_LIST_ELEMENTS with nothing left
        Assert.Equal(NlMsgType.Done, second[1].H.Type);
    }
}
