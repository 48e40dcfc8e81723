using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;
using static Nft.Engine.Tests.Transcript;

namespace Nft.Engine.Tests;

/// <summary>
/// The journal (NfTablesOptions.ElementsCommitted, RulesCommitted): element-only and rule-only commits are appended to the last
/// full state instead of saving it whole; the state plus the journal imports to exactly what a full export
/// at the same moment holds. A record's size is that of the change, not of the set; a record cut short at
/// the end is ignored, a journal that follows another state too, a damaged record before the end is refused.
/// </summary>
public partial class StateJournalTests
{
    /// <summary>An endpoint that saves as bpfilterd does: full states, and journal records after the last one.</summary>
    sealed class Saver
    {
        public byte[] State = [];
        public readonly List<byte[]> Records = [];
        public int FullWrites, Journaled;
        public readonly NfTablesEndpoint Endpoint;

        public Saver(IRulesetBackend? backend = null)
        {
            Endpoint = NewEndpoint(new NfTablesOptions
            {
                Backend = backend,
                Requester = p => (p, "nft"),
                Clock = Clock,
                RefuseOutOfScope = false,
                StateChanged = state =>
                {
                    State = state;
                    Records.Clear();
                    FullWrites++;
                },
                ElementsCommitted = Append,
                RulesCommitted = Append,
            });
        }

        bool Append(byte[] r)
        {
            if (State.Length == 0) return false;
            Records.Add(r);
            Journaled++;
            return true;
        }

        public byte[] Journal() => [.. NfTablesEndpoint.JournalHeader(State), .. Records.SelectMany(r => r)];
    }

    // the monotonic clock itself: every endpoint has the same clock offset however long apart they start (a
    // fixed clock would give a later endpoint another offset, saved with its state, on a slow machine)
    static long Clock() => Environment.TickCount64;

    static NfTablesEndpoint Fresh() => NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), Clock = Clock, RefuseOutOfScope = false });

    static byte[] Restored(byte[] state, byte[] journal)
    {
        var copy = Fresh();
        copy.ImportState(state, journal);
        return copy.ExportState();
    }

    [Theory]
    [InlineData("sets.txt")]
    [InlineData("rules.txt")]
    public void StatePlusJournalIsTheFullStateAfterEveryBatchOfACapturedSession(string file)
    {
        var s = new Saver();
        foreach (var (batch, _) in Batches(file))
        {
            s.Endpoint.Process(batch, Port);
            if (s.State.Length == 0) continue;
            Assert.Equal(s.Endpoint.ExportState(), Restored(s.State, s.Journal()));
        }
        Assert.True(s.Journaled > 0, "the session has element-only or rule-only batches: they must be journaled");
    }

    static byte[] NewSet(uint seq, string table, string name) => Msg(9, NlmFlags.Request | NlmFlags.Create, seq, Ip, w =>
    {
        w.PutString(1, table);
        w.PutString(2, name);
        w.PutU32Be(3, 0);
        w.PutU32Be(4, 7); // ipv4_addr
        w.PutU32Be(5, 4);
        w.PutU32Be(10, seq);
    });

    /// <summary>NEWSETELEM (12) or DELSETELEM (14) of the addresses 10.x.y.z for <paramref name="ids"/>.</summary>
    static byte[] Elements(byte type, uint seq, string table, string set, IEnumerable<int> ids) =>
        Msg(type, type == 12 ? NlmFlags.Request | NlmFlags.Create : NlmFlags.Request, seq, Ip, w =>
        {
            w.PutString(1, table);
            w.PutString(2, set);
            var list = w.BeginNested(3);
            foreach (var id in ids)
            {
                var el = w.BeginNested(1);
                var k = w.BeginNested(1);
                w.PutBytes(1, [10, (byte)(id >> 16), (byte)(id >> 8), (byte)id]);
                w.EndNested(k);
                w.EndNested(el);
            }
            w.EndNested(list);
        });

    [Fact]
    public void AnElementAddedToALargeSetIsASmallRecord()
    {
        var s = new Saver();
        // 50,000 elements, 2,000 per message as nft sends them (a nest's length is 16 bits)
        byte[][] load = [AddTable(2, "t"), NewSet(3, "t", "s"), .. Enumerable.Range(0, 25).Select(k => Elements(12, 4, "t", "s", Enumerable.Range(k * 2000, 2000)))];
        Assert.Empty(s.Endpoint.Process(Batch(load), Port));
        Assert.Equal(1, s.FullWrites);
        var full = s.State.Length;
        Assert.Empty(s.Endpoint.Process(Batch(Elements(12, 5, "t", "s", [60_000])), Port));
        Assert.Empty(s.Endpoint.Process(Batch(Elements(14, 6, "t", "s", [7, 60_000])), Port));
        Assert.Equal(1, s.FullWrites);
        Assert.Equal(2, s.Journaled);
        Assert.True(full > 1_000_000, $"{full}");
        Assert.All(s.Records, r => Assert.True(r.Length < 400, $"a record of {r.Length} bytes"));
        Assert.Equal(s.Endpoint.ExportState(), Restored(s.State, s.Journal()));
        // a structural change saves everything again
        Assert.Empty(s.Endpoint.Process(Batch(NewSet(7, "t", "s2")), Port));
        Assert.Equal(2, s.FullWrites);
        Assert.Empty(s.Records);
    }

    [Fact]
    public void ACutShortLastRecordAndAStaleJournalAreIgnoredADamagedOneIsRefused()
    {
        var s = new Saver();
        Assert.Empty(s.Endpoint.Process(Batch(AddTable(2, "t"), NewSet(3, "t", "s"), Elements(12, 4, "t", "s", [1, 2])), Port));
        var afterOne = s.Endpoint.ExportState();
        Assert.Empty(s.Endpoint.Process(Batch(Elements(12, 5, "t", "s", [3])), Port));
        var afterTwo = s.Endpoint.ExportState();
        Assert.Empty(s.Endpoint.Process(Batch(Elements(12, 6, "t", "s", [4])), Port));
        Assert.Equal(2, s.Records.Count);
        var journal = s.Journal();

        // the second record cut short (a crash while appending it, before its commit was answered)
        Assert.Equal(afterTwo, Restored(s.State, journal[..^3]));
        Assert.Equal(afterTwo, Restored(s.State, journal[..^(s.Records[1].Length - 5)]));
        // only a partial header: nothing was ever appended
        Assert.Equal(afterOne, Restored(s.State, journal[..10]));
        // the last record's checksum wrong: cut short as well
        var torn = (byte[])journal.Clone();
        torn[^1] ^= 0xff;
        Assert.Equal(afterTwo, Restored(s.State, torn));
        // a machine crash before write-back: the file's size covers blocks that hold zeros, from inside the
        // second record or from its start on
        var zeroed = (byte[])journal.Clone();
        Array.Clear(zeroed, zeroed.Length - s.Records[1].Length / 2, s.Records[1].Length / 2);
        Assert.NotEqual(journal, zeroed);
        Assert.Equal(afterTwo, Restored(s.State, [.. zeroed, .. new byte[100]]));
        Assert.Equal(afterTwo, Restored(s.State, [.. journal[..^s.Records[1].Length], .. new byte[4096]]));
        // but zeros in a record with good records after it are damage
        var hole = (byte[])journal.Clone();
        Array.Clear(hole, 16 + 12, 4);
        Assert.Throws<InvalidDataException>(() => Fresh().ImportState(s.State, hole));
        // a journal that follows another state (left behind when a full write replaced it)
        var stale = (byte[])journal.Clone();
        stale[8] ^= 0xff;
        Assert.Equal(afterOne, Restored(s.State, stale));
        // a damaged record that is not the last: the state cannot be trusted
        var bad = (byte[])journal.Clone();
        bad[16 + 12 + 2] ^= 0xff;
        var e = Assert.Throws<InvalidDataException>(() => Fresh().ImportState(s.State, bad));
        Assert.Contains("checksum", e.Message);
        // records out of order (a gap in generations)
        byte[] gap = [.. NfTablesEndpoint.JournalHeader(s.State), .. s.Records[1]];
        Assert.Contains("generation", Assert.Throws<InvalidDataException>(() => Fresh().ImportState(s.State, gap)).Message);
    }
}
