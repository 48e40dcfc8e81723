using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// A commit's validation and rule journal follow the change (the batch's record of the rules it added, replaced and
/// removed: <see cref="RuleTouches"/>): on random batches of appends, inserts, replaces, deletes and flushes of counted
/// rules, jumps and verdict-map lookups, verdict-map elements, new chains and chain renames, in a table with a base
/// chain, regular chains that jump into each other (loops: EMLINK) and a line of chains one jump short of the stack,
/// an endpoint that follows the change answers every batch, saves every state and journal record, and replays its
/// journal exactly as one that validates and diffs every changed table and chain whole.
/// </summary>
public class CommitFollowsChangeTests
{
    const uint VerdictType = 0xffffff00;
    const int Jump = -3;

    static long Clock() => Environment.TickCount64;

    sealed class Saver
    {
        public byte[] State = [];
        public readonly List<byte[]> Records = [];
        public int FullWrites;
        public readonly NfTablesEndpoint Endpoint;

        public Saver(bool whole)
        {
            Endpoint = NewEndpoint(new NfTablesOptions
            {
                Backend = new SlotLedgerBackend(),
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
            Endpoint.WholePasses = whole;
        }

        bool Append(byte[] r)
        {
            if (State.Length == 0) return false;
            Records.Add(r);
            return true;
        }

        public byte[] Journal() => [.. NfTablesEndpoint.JournalHeader(State), .. Records.SelectMany(r => r)];
    }

    static void Counted(NetlinkWriter w, ulong n)
    {
        Counter(w, n, n * 60);
        Verdict(w, 0);
    }

    /// <summary>`ip saddr vmap @vm`: a lookup of register 1 in the verdict map, into the verdict register.</summary>
    static void VmapLookup(NetlinkWriter w)
    {
        var e = w.BeginNested(1);
        w.PutString(1, "lookup");
        var d = w.BeginNested(2);
        w.PutString(1, "vm");
        w.PutU32Be(2, 1);
        w.PutU32Be(3, 0);
        w.EndNested(d);
        w.EndNested(e);
    }

    static byte[] NewVmap(uint seq) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "vm");
        w.PutU32Be(3, 0x8); // NFT_SET_MAP
        w.PutU32Be(4, 7);
        w.PutU32Be(5, 4);
        w.PutU32Be(6, VerdictType);
        w.PutU32Be(10, seq);
    });

    /// <summary>NEWSETELEM (12) of key → jump chain, or DELSETELEM (14) of key.</summary>
    static byte[] VmapElement(byte type, uint seq, uint key, string? chain) =>
        Msg(type, type == 12 ? Create : NlmFlags.Request, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, "vm");
            var list = w.BeginNested(3);
            var el = w.BeginNested(1);
            var k = w.BeginNested(1);
            w.PutU32Be(1, key);
            w.EndNested(k);
            if (chain != null)
            {
                var data = w.BeginNested(2);
                var v = w.BeginNested(2);
                w.PutU32Be(1, unchecked((uint)Jump));
                w.PutString(2, chain);
                w.EndNested(v);
                w.EndNested(data);
            }
            w.EndNested(el);
            w.EndNested(list);
        });

    static byte[] DelRule(uint seq, string chain, ulong? handle) => Msg(8, NlmFlags.Request, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, chain);
        if (handle is ulong h) w.PutU64Be(3, h);
    });

    static byte[] Rename(uint seq, ulong handle, string name) => Msg(3, NlmFlags.Request, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutU64Be(2, handle);
        w.PutString(3, name);
    });

    /// <summary>
    /// A table of base chains alone: a jump or goto to a base chain is refused, in a rule or a verdict-map element,
    /// so nothing is referenced, and its chain use needs no walk of its rules (Transaction.ChainRefs); with a regular
    /// chain the walk counts the jump and the element.
    /// </summary>
    [Fact]
    public void ATableOfBaseChainsAloneIsReferencedNowhere()
    {
        var e = NewEndpoint();
        Assert.Empty(e.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "in", hook: (1, 0)), AddChain(4, "t", "out", hook: (3, 0)), NewVmap(5),
            AddRule(6, "t", "in", w => Counted(w, 1)), AddRule(7, "t", "in", VmapLookup)), Port));
        Assert.NotEmpty(e.Process(Batch(AddRule(8, "t", "in", w => Verdict(w, Jump, "out"))), Port));
        Assert.NotEmpty(e.Process(Batch(VmapElement(12, 9, 1, "out")), Port));
        var t = e.Ruleset.FindTable(Ip, "t")!;
        Assert.Empty(Transaction.ChainRefsWalk(t));
        Assert.Empty(Transaction.ChainRefs(t));

        Assert.Empty(e.Process(Batch(AddChain(10, "t", "r"), AddRule(11, "t", "in", w => Verdict(w, Jump, "r")), VmapElement(12, 12, 2, "r")), Port));
        t = e.Ruleset.FindTable(Ip, "t")!;
        Assert.Equal(2, Transaction.ChainRefs(t)["r"]);
        Assert.Equal(Transaction.ChainRefsWalk(t), Transaction.ChainRefs(t));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomBatchesAnswerSaveAndReplayAsTheWholePasses(int seed)
    {
        var rng = new Random(seed);
        Saver follows = new(whole: false), whole = new(whole: true);
        // a base chain, six regular chains, a line d0 → d1 → … → d14 (a jump into d0 from a chain the base chain reaches
        // at depth 1 or more goes past the stack), a verdict map
        var load = new List<byte[]> { AddTable(2, "t"), AddChain(3, "t", "in", hook: (1, 0)), NewVmap(4) };
        for (int i = 0; i < 6; i++) load.Add(AddChain(5, "t", $"r{i}"));
        for (int i = 0; i < 15; i++) load.Add(AddChain(6, "t", $"d{i}"));
        for (int i = 0; i < 14; i++) load.Add(AddRule(7, "t", $"d{i}", w => Verdict(w, Jump, $"d{i + 1}")));
        for (int i = 0; i < 60; i++) load.Add(AddRule(8, "t", i % 3 == 0 ? "in" : $"r{i % 6}", w => Counted(w, (ulong)i)));
        load.Add(AddRule(9, "t", "in", w => Verdict(w, Jump, "r0")));
        var first = Batch([.. load]);
        Assert.Empty(follows.Endpoint.Process(first, Port));
        Assert.Empty(whole.Endpoint.Process(first, Port));

        int refused = 0, journaled = 0, renamed = 0;
        for (int step = 0; step < 250; step++)
        {
            var t = follows.Endpoint.Ruleset.FindTable(Ip, "t")!;
            var chains = t.Chains.Select(c => c.Name).ToList();
            var regular = t.Chains.Where(c => !c.IsBase).Select(c => c.Name).ToList();
            string AnyChain() => chains[rng.Next(chains.Count)];
            string AnyRegular() => regular[rng.Next(regular.Count)];
            ulong? AnyRule(string chain) => t.FindChain(chain)!.Rules is { Count: > 0 } rules ? rules[rng.Next(rules.Count)].Handle : null;
            Action<NetlinkWriter> AnyBody()
            {
                int pick = rng.Next(10);
                ulong n = (ulong)rng.Next(1000);
                string target = AnyRegular();
                return pick switch
                {
                    < 6 => w => Counted(w, n),
                    < 9 => w => Verdict(w, Jump, target),
                    _ => VmapLookup,
                };
            }
            var batch = new List<byte[]>();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                uint seq = (uint)(100 + step * 4 + k);
                string c = AnyChain();
                switch (rng.Next(20))
                {
                    case < 8:
                        batch.Add(AddRule(seq, "t", c, AnyBody()));
                        break;
                    case < 10 when AnyRule(c) is ulong at:
                        batch.Add(AddRule(seq, "t", c, AnyBody(), flags: Create | (rng.Next(2) == 0 ? NlmFlags.Append : 0), position: at));
                        break;
                    case < 12 when AnyRule(c) is ulong h:
                        batch.Add(AddRule(seq, "t", c, AnyBody(), flags: NlmFlags.Request | NlmFlags.Replace, handle: h));
                        break;
                    case < 15 when AnyRule(c) is ulong h:
                        batch.Add(DelRule(seq, c, h));
                        break;
                    case 15 when c.StartsWith('r'):
                        // a rule added and flushed in the same batch is in neither state
                        if (rng.Next(2) == 0) batch.Add(AddRule(seq, "t", c, AnyBody()));
                        batch.Add(DelRule(seq, c, null));
                        break;
                    case 16:
                        batch.Add(VmapElement(12, seq, (uint)rng.Next(8), AnyRegular()));
                        break;
                    case 17:
                        batch.Add(VmapElement(14, seq, (uint)rng.Next(8), null));
                        break;
                    case 18 when rng.Next(4) == 0:
                        batch.Add(AddChain(seq, "t", $"n{step}"));
                        break;
                    case 19 when rng.Next(3) == 0:
                        // jumps to r5 are rewritten with it
                        batch.Add(regular.Contains("r5") ? Rename(seq, t.FindChain("r5")!.Handle, "r5x") : Rename(seq, t.FindChain("r5x")!.Handle, "r5"));
                        renamed++;
                        break;
                    default:
                        batch.Add(AddRule(seq, "t", c, AnyBody()));
                        break;
                }
            }
            var request = Batch([.. batch]);
            int records = follows.Records.Count, writes = follows.FullWrites;
            var answer = follows.Endpoint.Process(request, Port);
            Assert.Equal(whole.Endpoint.Process(request, Port), answer);
            Assert.Equal(whole.Endpoint.ExportState(), follows.Endpoint.ExportState());
            Assert.Equal(whole.FullWrites, follows.FullWrites);
            Assert.Equal(whole.Records, follows.Records);
            // the element sequence counter aside: a batch that is refused, or adds an element that is there already, saves
            // nothing but may have used up sequence numbers (they only order elements, which keep their own)
            Assert.Equal(SansElementSeq(follows.Endpoint.ExportState()), SansElementSeq(Restored(follows.State, follows.Journal())));
            // chain use: a table's references are those of a walk of its rules and verdict maps, none to a base chain
            foreach (var table in follows.Endpoint.Ruleset.Tables)
            {
                var walked = Transaction.ChainRefsWalk(table);
                Assert.Equal(walked.OrderBy(kv => kv.Key, StringComparer.Ordinal), Transaction.ChainRefs(table).OrderBy(kv => kv.Key, StringComparer.Ordinal));
                Assert.All(walked.Keys, name => Assert.False(table.FindChain(name)?.IsBase ?? false, $"{name} is a base chain"));
            }
            if (answer.Count > 0) refused++;
            if (follows.Records.Count > records && follows.FullWrites == writes) journaled++;
        }
        // the walk through every kind of batch: refused ones (loops, the stack), journaled ones, skipped walks
        Assert.True(refused > 5, $"{refused} refused");
        Assert.True(journaled > 50, $"{journaled} journaled");
        Assert.True(follows.Endpoint.WalksSkipped > 20, $"{follows.Endpoint.WalksSkipped} walks skipped");
        Assert.Equal(0, whole.Endpoint.WalksSkipped);
        Assert.True(renamed > 0);
    }

    static byte[] SansElementSeq(byte[] state)
    {
        var (snapshot, counters) = StateCodec.Decode(state);
        return StateCodec.Encode(snapshot, counters with { ElementSeq = 0 });
    }

    static byte[] Restored(byte[] state, byte[] journal)
    {
        var copy = NewEndpoint(new NfTablesOptions
        {
            Requester = p => (p, "nft"), Clock = Clock, RefuseOutOfScope = false, Backend = new SlotLedgerBackend(),
        });
        copy.ImportState(state, journal);
        return copy.ExportState();
    }
}
