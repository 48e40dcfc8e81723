using Nft.Engine;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>What the engine tells bpfilterd's metrics: each batch's outcome and reason, and the counters a scrape reads.</summary>
public class BatchOutcomeTests
{
    sealed class RefusingBackend : IRulesetBackend
    {
        public bool Refuse;
        public CounterValue? Live;
        public int Requests;
        public void Prepare(RulesetChange change)
        {
            if (Refuse) throw new BackendRefusal(Errno.EOPNOTSUPP, "no", reason: "bpf_only");
        }
        public void Commit() { }
        public void Abort() { }
        public CounterValue? ReadCounter(CounterRef counter) => Live;
        public void ResetCounter(CounterRef counter) { }
        public void BeginRequest() => Requests++;
    }

    [Fact]
    public void EveryBatchReportsHowItEndedAndWhy()
    {
        var be = new RefusingBackend();
        var outcomes = new List<BatchOutcome>();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft"), BatchFinished = outcomes.Add });
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port);
        ep.Process(Batch(), Port); // nothing to commit
        ep.Process(Batch(AddChain(4, "nosuchtable", "c")), Port); // ENOENT, as the kernel answers
        be.Refuse = true;
        ep.Process(Batch(AddChain(5, "t", "d")), Port);
        ep.Process(BatchOf([AddChain(6, "t", "e")], end: false), Port); // no BATCH_END: nothing applied, no error
        ep.Process(Dump(1), Port); // not a batch
        Assert.Equal(
            [(BatchResult.Committed, null), (BatchResult.Unchanged, null), (BatchResult.Refused, BatchOutcome.NfTablesReason),
                (BatchResult.Refused, "bpf_only"), (BatchResult.Aborted, null)],
            outcomes.Select(o => (o.Result, o.Reason)));
        Assert.All(outcomes, o => Assert.True(o.Elapsed > TimeSpan.Zero));
    }

    sealed class SlowBackend(TimeSpan prepare, TimeSpan commit) : IRulesetBackend
    {
        public void Prepare(RulesetChange change) => Thread.Sleep(prepare);
        public void Commit() => Thread.Sleep(commit);
        public void Abort() { }
        public CounterValue? ReadCounter(CounterRef counter) => null;
        public void ResetCounter(CounterRef counter) { }
        public void BeginRequest() { }
    }

    [Fact]
    public void ABatchReportsWhereItsTimeWent()
    {
        var outcomes = new List<BatchOutcome>();
        var ep = NewEndpoint(new NfTablesOptions
        {
            Backend = new SlowBackend(TimeSpan.FromMilliseconds(30), TimeSpan.FromMilliseconds(20)),
            Requester = p => (p, "nft"),
            StateChanged = _ => Thread.Sleep(40),
            BatchFinished = outcomes.Add,
        });
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", w => Verdict(w, 1))), Port);
        ep.Process(BatchOf([AddChain(5, "t", "d")], end: false), Port); // no BATCH_END: applied, then dropped
        var committed = Assert.IsType<BatchPhases>(outcomes[0].Phases);
        Assert.Equal(3, committed.Messages);
        Assert.True(committed.Prepare >= TimeSpan.FromMilliseconds(30), committed.ToString());
        Assert.True(committed.BackendCommit >= TimeSpan.FromMilliseconds(20), committed.ToString());
        Assert.True(committed.Save >= TimeSpan.FromMilliseconds(40), committed.ToString());
        var sum = committed.Apply + committed.Validate + committed.Prepare + committed.BackendCommit + committed.Save + committed.Notify;
        Assert.True(sum <= outcomes[0].Elapsed, $"{sum} > {outcomes[0].Elapsed}");
        var aborted = Assert.IsType<BatchPhases>(outcomes[1].Phases);
        Assert.Equal(1, aborted.Messages);
        Assert.Equal(TimeSpan.Zero, aborted.Prepare + aborted.BackendCommit + aborted.Save + aborted.Notify);
        Assert.StartsWith("1 message(s): apply ", aborted.ToString());
    }

    [Fact]
    public void AReadingSeesTheCommittedGenerationAndTheListedCounterTotals()
    {
        var be = new RefusingBackend { Live = new CounterValue(10, 1000) };
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"),
            AddRule(4, "t", "c", w => { Counter(w, 1, 100); Verdict(w, 1); }),
            AddRule(5, "t", "c", w => Verdict(w, 1)),
            AddRule(6, "t", "c", w => { Counter(w, 2, 200); Counter(w, 3, 300); })), Port);
        int before = be.Requests;
        var (generation, counters) = ep.Observe(r => (r.Generation, r.RuleCounters().ToList()));
        Assert.Equal(before + 1, be.Requests); // one snapshot of the backend's counters, as a request takes
        Assert.Equal(ep.Generation, generation);
        Assert.Equal(
            [new RuleCounter(Ip, "t", "c", 2, 0, new CounterValue(11, 1100)), new RuleCounter(Ip, "t", "c", 4, 0, new CounterValue(12, 1200)),
                new RuleCounter(Ip, "t", "c", 4, 1, new CounterValue(13, 1300))],
            counters);
    }
}
