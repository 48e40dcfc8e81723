using System.Buffers.Binary;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;
using static Nft.Engine.Tests.Transcript;

namespace Nft.Engine.Tests;

/// <summary>
/// ExportState/ImportState: the state a daemon restart reads back answers nft byte for byte as the endpoint
/// that wrote it (every dump, handles included), and hands out the same handles and generation next.
/// Damaged state is refused with a reason, never half-imported.
/// </summary>
public class StateRoundTripTests
{
    static NfTablesEndpoint Fresh() => NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), Clock = () => 0, Monotonic = () => 0, RefuseOutOfScope = false });

    /// <summary>Everything nft can list: tables, chains, rules, sets, objects, and each set's elements, as raw bytes.</summary>
    static List<string> Listing(NfTablesEndpoint ep)
    {
        var all = new List<string>();
        foreach (byte type in new byte[] { 1, 4, 7, 10, 19 })
            all.AddRange(Messages(ep.Process(Dump(type), Port)).Select(m => Convert.ToHexString(m.Bytes)));
        foreach (var t in ep.Ruleset.Tables)
            foreach (var s in t.Sets)
                all.AddRange(Messages(ep.Process(Dump(13, t.Family, w =>
                {
                    w.PutString(1, t.Name);
                    w.PutString(2, s.Name);
                }), Port)).Select(m => Convert.ToHexString(m.Bytes)));
        return all;
    }

    static void AssertSameAfterRoundTrip(NfTablesEndpoint ep, string where)
    {
        var copy = Fresh();
        copy.ImportState(ep.ExportState());
        Assert.Equal(ep.Generation, copy.Generation);
        var before = Listing(ep);
        var after = Listing(copy);
        int diff = Enumerable.Range(0, Math.Min(before.Count, after.Count)).FirstOrDefault(k => before[k] != after[k], -1);
        Assert.True(before.SequenceEqual(after),
            $"{where}: the imported state lists differently ({before.Count} vs {after.Count} messages; first difference at {diff}: {(diff >= 0 ? before[diff] + " vs " + after[diff] : "")})");
        Assert.Equal(ep.ExportState(), copy.ExportState());
    }

    [Theory]
    [InlineData("rules.txt")]
    [InlineData("chains.txt")]
    [InlineData("sets.txt")]
    [InlineData("tables.txt")]
    public void EveryStateOfACapturedSessionSurvivesExportAndImport(string file)
    {
        var ep = Fresh();
        int nonEmpty = 0;
        foreach (var (batch, i) in Batches(file))
        {
            ep.Process(batch, Port);
            if (ep.Ruleset.Tables.Count > 0) nonEmpty++;
            AssertSameAfterRoundTrip(ep, $"{file} after batch ending at message {i}");
        }
        Assert.True(nonEmpty > 0, $"{file}: no batch left anything to round-trip");
    }

    [Fact]
    public void HandlesCountersAndGenerationContinueWhereTheyStopped()
    {
        var ep = Fresh();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c", hook: (1, 0)),
            AddRule(4, "t", "c", w => { Counter(w, 5, 700); Verdict(w, 1); }),
            AddRule(5, "t", "c", w => Verdict(w, 0))), Port));
        // a rule deleted leaves a gap the table's handle counter remembers
        Assert.Empty(ep.Process(Batch(Msg(8, NlmFlags.Request, 2, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, "c");
            w.PutU64Be(3, ep.Ruleset.Tables[0].Chains[0].Rules[1].Handle);
        })), Port));
        var copy = Fresh();
        copy.ImportState(ep.ExportState());
        Assert.Equal(Listing(ep), Listing(copy));
        Assert.Contains(Listing(copy), m => m.Contains(Convert.ToHexString(BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness(5UL)))));
        foreach (var e in new[] { ep, copy })
            Assert.Empty(e.Process(Batch(AddRule(2, "t", "c", w => Verdict(w, 1)), AddTable(3, "u")), Port));
        Assert.Equal(ep.Generation, copy.Generation);
        Assert.Equal(ep.Ruleset.Tables[0].Chains[0].Rules[^1].Handle, copy.Ruleset.Tables[0].Chains[0].Rules[^1].Handle);
        Assert.Equal(ep.Ruleset.Tables[1].Handle, copy.Ruleset.Tables[1].Handle);
        Assert.Equal(Listing(ep), Listing(copy));
    }

    /// <summary>Named objects with their state and user data, and sets with a timeout, a size and statements, list the same after a restart.</summary>
    [Fact]
    public void ObjectsAndSetStatementsSurviveExportAndImport()
    {
        var ep = Fresh();
        // with user data (NFTA_OBJ_USERDATA)
        byte[] Obj(uint seq, string name, uint type, Action<NetlinkWriter> data) =>
            NewObj(seq, name, type, data, w => w.PutRaw(8, [0, 4, (byte)'n', (byte)'o', (byte)'t', (byte)'e']));
        byte[] NewSet(uint seq, string name, uint flags, Action<NetlinkWriter> more) => Msg(9, Create, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, name);
            w.PutU32Be(3, flags);
            w.PutU32Be(4, 7);
            w.PutU32Be(5, 4);
            w.PutU32Be(10, seq);
            more(w);
        });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"),
            Obj(3, "cnt", 1, w => { w.PutU64Be(1, 700); w.PutU64Be(2, 5); }),
            Obj(4, "q", 2, w => { w.PutU64Be(1, 1000); w.PutU32Be(2, 0); w.PutU64Be(4, 10); }),
            Obj(5, "l", 4, w => { w.PutU64Be(1, 10); w.PutU64Be(2, 60); }),
            // timeout and gc interval, a size, and one statement sent as a list (dumped as NFTA_SET_EXPR)
            NewSet(6, "s", 0x10 | 0x20, w =>
            {
                w.PutU64Be(11, 60000);
                w.PutU32Be(12, 1000);
                var d = w.BeginNested(9);
                w.PutU32Be(1, 128);
                w.EndNested(d);
                var l = w.BeginNested(18);
                Counter(w);
                w.EndNested(l);
            }),
            // two statements stay a list
            NewSet(7, "s2", 0x20, w =>
            {
                var l = w.BeginNested(18);
                Counter(w);
                Counter(w);
                w.EndNested(l);
            }),
            // a concatenation of one field is none (nf_tables_fill_set dumps field_count > 1 only)
            NewSet(8, "s3", 0, w =>
            {
                var d = w.BeginNested(9);
                var c = w.BeginNested(2);
                var f = w.BeginNested(1);
                w.PutU32Be(1, 4);
                w.EndNested(f);
                w.EndNested(c);
                w.EndNested(d);
            })), Port));
        var sets = ep.Ruleset.Tables[0].Sets;
        Assert.NotNull(sets[0].Set.Expr);
        Assert.Null(sets[0].Set.Expressions);
        Assert.Equal(2, sets[1].Set.Expressions?.Count);
        Assert.Null(sets[2].ConcatFieldLens);
        Assert.Equal(3, ep.Ruleset.Tables[0].Objects.Count);
        AssertSameAfterRoundTrip(ep, "objects and set statements");
    }

    /// <summary>
    /// Element deadlines are instants on the engine's clock: a process whose clock has another offset from the
    /// monotonic clock (bpfilterd moving from Environment.TickCount64 to the kernel's jiffies) imports them moved
    /// by that offset, so every element keeps the time it had left; the same clock moves nothing.
    /// </summary>
    [Theory]
    [InlineData(0L)]
    [InlineData(17_179_000_000L)]
    [InlineData(-5_000L)]
    public void ElementDeadlinesKeepTheirRemainingTimeOnAnotherClock(long otherOffset)
    {
        // clocks that run with the monotonic clock, `offset` ms off a reference one
        NfTablesEndpoint Endpoint(long offset) => NewEndpoint(new NfTablesOptions
        {
            Requester = p => (p, "nft"), Clock = () => Environment.TickCount64 + 1_000_000 + offset, RefuseOutOfScope = false,
        });
        var ep = Endpoint(0);
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewTimeoutSet(3, "t", "s"), Msg(12, Create, 4, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, "s");
            var list = w.BeginNested(3);
            var el = w.BeginNested(1);
            var k = w.BeginNested(1);
            w.PutBytes(1, [10, 0, 0, 1]);
            w.EndNested(k);
            w.PutU64Be(4, 30_000); // NFTA_SET_ELEM_TIMEOUT
            w.EndNested(el);
            w.EndNested(list);
        })), Port));
        var saved = ep.ExportState();
        var deadline = ep.Ruleset.Tables[0].Sets[0].Elements.Single().ExpiresAtMs!.Value;

        var copy = Endpoint(otherOffset);
        copy.ImportState(saved);
        var moved = copy.Ruleset.Tables[0].Sets[0].Elements.Single().ExpiresAtMs!.Value;
        if (Math.Abs(otherOffset) < 1000) Assert.Equal(deadline, moved);
        else Assert.InRange(moved, deadline + otherOffset - 2, deadline + otherOffset + 2); // two clock reads may straddle a ms
        // the same clock: the copy adopts the saved reference and saves the same bytes
        if (otherOffset == 0) Assert.Equal(saved, copy.ExportState());
    }

    [Fact]
    public void AnAbortedBatchSavesTheHandlesItUsedUp()
    {
        byte[]? saved = null;
        var ep = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), Clock = () => 0, Monotonic = () => 0, RefuseOutOfScope = false, StateChanged = state => saved = state });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c", hook: (1, 0))), Port));
        // a rule (handle 2) and then a rule for a chain that does not exist: the batch fails, handle 2 stays used
        Assert.NotEmpty(ep.Process(Batch(AddRule(2, "t", "c", w => Verdict(w, 1)), AddRule(3, "t", "nochain", w => Verdict(w, 1))), Port));
        var copy = Fresh();
        copy.ImportState(saved!);
        foreach (var e in new[] { ep, copy })
            Assert.Empty(e.Process(Batch(AddRule(2, "t", "c", w => Verdict(w, 1))), Port));
        Assert.Equal(3ul, ep.Ruleset.Tables[0].Chains[0].Rules[0].Handle);
        Assert.Equal(3ul, copy.Ruleset.Tables[0].Chains[0].Rules[0].Handle);
    }

    [Fact]
    public void AfterARestartOwnerTablesAreReleasedTheirOwnersConnectionIsGone()
    {
        var ep = Fresh();
        Assert.Empty(ep.Process(Batch(AddTable(2, "keep"), Msg(0, Create, 3, Ip, w => { w.PutString(1, "owned"); w.PutU32Be(2, 2 /* owner */); })), Port));
        Assert.Equal(2, ep.Ruleset.Tables.Count);
        var copy = Fresh();
        copy.ImportState(ep.ExportState());
        Assert.Equal(2, copy.Ruleset.Tables.Count); // the state itself round-trips
        var generation = copy.Generation;
        Assert.Equal((Ip, "owned"), Assert.Single(copy.ReleaseOrphanedOwnerTables()));
        Assert.Equal("keep", Assert.Single(copy.Ruleset.Tables).Name);
        Assert.Equal(generation, copy.Generation);
        Assert.Empty(copy.ReleaseOrphanedOwnerTables());
        // as after nf_tables released it: the name is free for anyone
        Assert.Empty(copy.Process(Batch(AddTable(2, "owned")), Port + 1));
    }

    [Fact]
    public void DamagedStateIsRefusedAndChangesNothing()
    {
        var ep = Fresh();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c", hook: (1, 0)), AddRule(4, "t", "c", w => Verdict(w, 0))), Port));
        var good = ep.ExportState();
        var target = Fresh();
        Assert.Empty(target.Process(Batch(AddTable(2, "keep")), Port));
        var listing = Listing(target);
        for (int len = 0; len < good.Length; len++)
            Assert.Throws<InvalidDataException>(() => target.ImportState(good.AsSpan(0, len)));
        for (int i = 0; i < good.Length; i++)
        {
            var bad = (byte[])good.Clone();
            bad[i] ^= 0x41;
            Assert.Throws<InvalidDataException>(() => target.ImportState(bad));
        }
        Assert.Equal(listing, Listing(target));
        target.ImportState(good);
        Assert.Equal(Listing(ep), Listing(target));
    }
}
