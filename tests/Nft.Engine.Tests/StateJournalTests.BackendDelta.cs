using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// Rule journal records with a backend whose saved state grows with the rules (<see cref="SlotLedgerBackend"/>):
/// each record holds the backend's change only (<see cref="BackendStateDelta"/>), and the state plus any number of
/// records, mixed with element records and across a full write, replays to exactly the bytes a full export holds.
/// </summary>
public partial class StateJournalTests
{
    static byte[] RestoredWithBackend(byte[] state, byte[] journal)
    {
        var copy = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), Clock = Clock, RefuseOutOfScope = false, Backend = new SlotLedgerBackend() });
        copy.ImportState(state, journal);
        return copy.ExportState();
    }

    [Fact]
    public void ThirtyRuleAddsAndMixedCommitsAreRecordsOfTheirChangeThatReplayToTheFullState()
    {
        var s = new Saver(new SlotLedgerBackend());
        byte[][] load = [AddTable(2, "t"), AddChain(3, "t", "c"), NewSet(4, "t", "s"), .. Enumerable.Range(0, 2000).Select(i => AddRule(5, "t", "c", Counted((ulong)i, (ulong)i * 60)))];
        Assert.Empty(s.Endpoint.Process(Batch(load), Port));
        Assert.Equal(1, s.FullWrites);
        var backendBytes = StateCodec.Decode(s.State).Counters.Backend!;
        Assert.True(backendBytes.Length > 100_000, $"{backendBytes.Length}");

        int full = 1;
        void Commit(params byte[][] batch)
        {
            Assert.Empty(s.Endpoint.Process(Batch(batch), Port));
            Assert.Equal(full, s.FullWrites);
            // byte for byte: the rules, handles, counters and the backend's bytes
            Assert.Equal(s.Endpoint.ExportState(), RestoredWithBackend(s.State, s.Journal()));
        }
        for (uint i = 0; i < 30; i++)
        {
            var handles = Handles(s.Endpoint, "c");
            byte[][] batch = (i % 10) switch
            {
                3 => [AddRule(10 + i, "t", "c", Drop, flags: NlmFlags.Request | NlmFlags.Create, position: handles[(int)i * 50])], // insert
                5 => [DelRule(10 + i, "t", "c", handles[(int)i * 7])],
                7 => [AddRule(10 + i, "t", "c", Counted(i, i), flags: NlmFlags.Request | NlmFlags.Replace, handle: handles[(int)i])],
                9 => [AddRule(10 + i, "t", "c", Counted(i, i)), Elements(12, 10 + i, "t", "s", [(int)i])], // rules and elements in one batch
                _ => [AddRule(10 + i, "t", "c", Counted(i, 60 * i))],
            };
            Commit(batch);
            if (i % 4 == 0) Commit(Elements(12, 100 + i, "t", "s", [1000 + (int)i])); // element-only records in between
        }
        Assert.Equal(38, s.Records.Count);
        Assert.All(s.Records, r => Assert.True(r.Length < 1000, $"a record of {r.Length} bytes"));
        Assert.Equal("BFNFTJ03"u8.ToArray(), s.Journal()[..8]);

        // a full write (a chain added) starts the journal anew: the next records are changes from its backend state
        full++;
        Commit(AddChain(200, "t", "d"));
        Assert.Empty(s.Records);
        for (uint i = 0; i < 5; i++) Commit(AddRule(201 + i, "t", "d", Counted(i, i)));
        Assert.Equal(5, s.Records.Count);
        Assert.All(s.Records, r => Assert.True(r.Length < 1000, $"a record of {r.Length} bytes"));

        // replayed onto a state whose backend part is not the one the records were made from: refused, not guessed
        var other = StateCodec.Encode(StateCodec.Decode(s.State).Snapshot, StateCodec.Decode(s.State).Counters with { Backend = backendBytes });
        var e = Assert.Throws<InvalidDataException>(() => RestoredWithBackend(other, [.. NfTablesEndpoint.JournalHeader(other), .. s.Records.SelectMany(r => r)]));
        Assert.Contains("delta", e.Message);
    }

    [Fact]
    public void AJournalOfTheFormatBeforeDeltasIsStillReplayed()
    {
        // J02: rule records whose backend part is whole (written by the daemon before this one)
        var s = new Saver(new SlotLedgerBackend());
        Assert.Empty(s.Endpoint.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", Counted(1, 1))), Port));
        var before = s.Endpoint.Ruleset;
        var (_, counters) = StateCodec.Decode(s.State);
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(5, "t", "c", Counted(2, 2))), Port));
        var now = StateCodec.Decode(s.Endpoint.ExportState()).Counters;
        var record = StateCodec.JournalRecord(counters.Generation, now.Generation, now.ElementSeq, now.TableHandle, s.Endpoint.Ruleset, [],
            StateCodec.RuleChanges(before, s.Endpoint.Ruleset, new HashSet<(byte, string, string)>())!, now.Backend);
        var header = NfTablesEndpoint.JournalHeader(s.State);
        "BFNFTJ02"u8.CopyTo(header);
        Assert.Equal(s.Endpoint.ExportState(), RestoredWithBackend(s.State, [.. header, .. record]));
        Assert.Equal(s.Endpoint.ExportState(), RestoredWithBackend(s.State, s.Journal()));
    }

    [Fact]
    public void ARuleRecordCutShortOrTornLeavesTheBackendStateOfTheRecordBefore()
    {
        var s = new Saver(new SlotLedgerBackend());
        byte[][] load = [AddTable(2, "t"), AddChain(3, "t", "c"), .. Enumerable.Range(0, 500).Select(i => AddRule(4, "t", "c", Counted((ulong)i, 1)))];
        Assert.Empty(s.Endpoint.Process(Batch(load), Port));
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(5, "t", "c", Counted(1, 2))), Port));
        var afterOne = s.Endpoint.ExportState();
        Assert.Empty(s.Endpoint.Process(Batch(AddRule(6, "t", "c", Counted(3, 4))), Port));
        Assert.Equal(2, s.Records.Count);
        var journal = s.Journal();
        Assert.Equal(afterOne, RestoredWithBackend(s.State, journal[..^7]));
        Assert.Equal(afterOne, RestoredWithBackend(s.State, [.. journal[..^s.Records[1].Length], .. new byte[4096]]));
        var torn = (byte[])journal.Clone();
        torn[^1] ^= 0xff;
        Assert.Equal(afterOne, RestoredWithBackend(s.State, torn));
        Assert.Equal(s.Endpoint.ExportState(), RestoredWithBackend(s.State, journal));
        // the first record damaged with the second after it: corrupt, not skipped (the second is a change from the first)
        var damaged = (byte[])journal.Clone();
        damaged[NfTablesEndpoint.JournalHeader(s.State).Length + s.Records[0].Length - 1] ^= 0xff;
        Assert.Throws<InvalidDataException>(() => RestoredWithBackend(s.State, damaged));
    }
}
