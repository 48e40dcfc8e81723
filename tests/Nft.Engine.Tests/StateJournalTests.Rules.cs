using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// Rule journal records (NfTablesOptions.RulesCommitted): commits that add, insert, replace or delete rules of
/// existing chains are appended as their changes; the state plus the journal imports to exactly what a full
/// export after the same commits holds (handles, positions, counter cells, generation, handle counters).
/// </summary>
public partial class StateJournalTests
{
    static void Drop(NetlinkWriter w) => Verdict(w, 0);

    static Action<NetlinkWriter> Counted(ulong packets, ulong bytes) => w =>
    {
        Counter(w, packets, bytes);
        Verdict(w, 0);
    };

    static byte[] DelRule(uint seq, string table, string chain, ulong handle) => Msg(8, NlmFlags.Request, seq, Ip, w =>
    {
        w.PutString(1, table);
        w.PutString(2, chain);
        w.PutU64Be(3, handle);
    });

    /// <summary>The rule handles of chain <paramref name="chain"/> of table t in order.</summary>
    static List<ulong> Handles(NfTablesEndpoint ep, string chain) =>
        ep.Ruleset.FindTable(Ip, "t")!.FindChain(chain)!.Rules.Select(r => r.Handle).ToList();

    [Fact]
    public void RuleAddsInsertsReplacesAndDeletesAreSmallRecordsThatReplayExactly()
    {
        var s = new Saver();
        // 2,000 rules with counters: the full state is large, a record is one rule
        byte[][] load = [AddTable(2, "t"), AddChain(3, "t", "c"), .. Enumerable.Range(0, 2000).Select(i => AddRule(4, "t", "c", Counted((ulong)i, (ulong)i * 60)))];
        Assert.Empty(s.Endpoint.Process(Batch(load), Port));
        Assert.Equal(1, s.FullWrites);
        var before = Handles(s.Endpoint, "c");
        ulong first = before[0], tenth = before[9], last = before[^1];

        void Commit(params byte[][] batch)
        {
            Assert.Empty(s.Endpoint.Process(Batch(batch), Port));
            Assert.Equal(1, s.FullWrites);
            Assert.Equal(s.Endpoint.ExportState(), Restored(s.State, s.Journal()));
        }
        Commit(AddRule(5, "t", "c", Counted(5, 300)));                                      // append, with counter values
        Commit(AddRule(6, "t", "c", Drop, flags: NlmFlags.Request | NlmFlags.Create));       // insert at the start
        Commit(AddRule(7, "t", "c", Counted(1, 1), flags: NlmFlags.Request | NlmFlags.Create, position: tenth)); // insert before the tenth
        Commit(AddRule(8, "t", "c", Counted(9, 9), flags: NlmFlags.Request | NlmFlags.Replace, handle: first)); // replace in place
        Commit(DelRule(9, "t", "c", last));                                                  // delete the last
        // several in one batch: adds, deletes, an insert and a replace
        var now = Handles(s.Endpoint, "c");
        Commit(AddRule(10, "t", "c", Drop), DelRule(10, "t", "c", now[3]), AddRule(10, "t", "c", Drop, flags: NlmFlags.Request | NlmFlags.Create, position: now[100]),
            AddRule(10, "t", "c", Drop, flags: NlmFlags.Request | NlmFlags.Replace, handle: now[5]), DelRule(10, "t", "c", now[6]), AddRule(10, "t", "c", Counted(2, 2)));
        Assert.Equal(6, s.Records.Count);
        Assert.All(s.Records, r => Assert.True(r.Length < 1000, $"a record of {r.Length} bytes"));
        Assert.True(s.State.Length > 100_000, $"{s.State.Length}");

        var copy = Fresh();
        copy.ImportState(s.State, s.Journal());
        var expect = Handles(s.Endpoint, "c");
        Assert.Equal(expect, Handles(copy, "c"));
        Assert.Equal(2003, expect.Count);
        Assert.DoesNotContain(last, expect);
        // handles go on where they were: a rule added after the restore gets the next one on both
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(11, "t", "c", Drop)), Port));
        Assert.Empty(copy.Process(Batch(AddRule(11, "t", "c", Drop)), Port));
        Assert.Equal(Handles(s.Endpoint, "c"), Handles(copy, "c"));
    }

    [Fact]
    public void ElementAndRuleRecordsMixAndAnythingElseSavesTheWholeState()
    {
        var s = new Saver();
        Assert.Empty(s.Endpoint.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), NewSet(4, "t", "s"), AddRule(5, "t", "c", Drop)), Port));
        Assert.Equal(1, s.FullWrites);
        Assert.Empty(s.Endpoint.Process(Batch(Elements(12, 6, "t", "s", [1, 2])), Port));                       // element record
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(7, "t", "c", Counted(3, 4)), Elements(12, 7, "t", "s", [3]), Elements(14, 7, "t", "s", [1])), Port)); // both in one
        Assert.Empty(s.Endpoint.Process(Batch(Elements(14, 8, "t", "s", [2])), Port));
        Assert.Equal(1, s.FullWrites);
        Assert.Equal(3, s.Records.Count);
        Assert.Equal(s.Endpoint.ExportState(), Restored(s.State, s.Journal()));
        // a chain added: the whole state
        Assert.Empty(s.Endpoint.Process(Batch(AddChain(9, "t", "d")), Port));
        Assert.Equal(2, s.FullWrites);
        Assert.Empty(s.Records);
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(10, "t", "d", Drop)), Port));
        Assert.Equal(2, s.FullWrites);
        // a set added along with a rule: the whole state
        Assert.Empty(s.Endpoint.Process(Batch(NewSet(11, "t", "s2"), AddRule(11, "t", "c", Drop)), Port));
        Assert.Equal(3, s.FullWrites);
        Assert.Equal(s.Endpoint.ExportState(), Restored(s.State, s.Journal()));
    }

    [Fact]
    public void ACutShortOrZeroedLastRuleRecordIsIgnoredARecordAgainstAnotherChainIsRefused()
    {
        var s = new Saver();
        Assert.Empty(s.Endpoint.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", Drop)), Port));
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(5, "t", "c", Counted(1, 2))), Port));
        var afterOne = s.Endpoint.ExportState();
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(6, "t", "c", Counted(3, 4))), Port));
        Assert.Equal(2, s.Records.Count);
        var journal = s.Journal();
        Assert.Equal(afterOne, Restored(s.State, journal[..^7]));
        Assert.Equal(afterOne, Restored(s.State, [.. journal[..^s.Records[1].Length], .. new byte[4096]]));
        var torn = (byte[])journal.Clone();
        torn[^1] ^= 0xff;
        Assert.Equal(afterOne, Restored(s.State, torn));
        // the records onto a state whose chain lacks the rules they follow: refused, not guessed
        var other = new Saver();
        Assert.Empty(other.Endpoint.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port));
        var e = Assert.Throws<InvalidDataException>(() => Fresh().ImportState(other.State, [.. NfTablesEndpoint.JournalHeader(other.State), .. s.Records[0]]));
        Assert.Contains("journal", e.Message);
    }
}
