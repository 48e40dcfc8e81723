using Bpfilter.Daemon.Metrics;
using Nft.Engine;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>Commit counts, the duration histogram and refusals by reason.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class BatchMetricsTests
{
    [Fact]
    public void CommitsFillTheHistogramAndRefusalsCountByReason()
    {
        var m = new BatchMetrics();
        m.Record(new BatchOutcome(BatchResult.Committed, TimeSpan.FromMilliseconds(0.2)));
        m.Record(new BatchOutcome(BatchResult.Committed, TimeSpan.FromMilliseconds(1))); // on a bound: in that bucket
        m.Record(new BatchOutcome(BatchResult.Committed, TimeSpan.FromSeconds(30))); // above every bound: +Inf only
        m.Record(new BatchOutcome(BatchResult.Unchanged, TimeSpan.FromSeconds(1)));
        m.Record(new BatchOutcome(BatchResult.Aborted, TimeSpan.FromSeconds(1)));
        m.Record(new BatchOutcome(BatchResult.Refused, TimeSpan.FromSeconds(1), BatchOutcome.NfTablesReason));
        m.Record(new BatchOutcome(BatchResult.Refused, TimeSpan.FromSeconds(1), "bpf_only"));
        m.Record(new BatchOutcome(BatchResult.Refused, TimeSpan.FromSeconds(1), "bpf_only"));
        var s = m.Read();
        Assert.Equal(3UL, s.Commits);
        Assert.Equal(30.0012, s.Seconds, 9);
        Assert.Equal(1UL, s.Buckets.Single(b => b.UpperBound == 0.0005).Count);
        Assert.Equal(2UL, s.Buckets.Single(b => b.UpperBound == 0.001).Count);
        Assert.Equal(2UL, s.Buckets[^1].Count);
        var refusals = s.Refusals.ToDictionary(r => r.Key, r => r.Value);
        Assert.Equal(1UL, refusals["nf_tables"]);
        Assert.Equal(2UL, refusals["bpf_only"]);
        Assert.Equal(BatchMetrics.Reasons.Length, refusals.Count); // every reason is there, at 0 when it never happened
        Assert.All(refusals.Where(r => r.Key is not ("nf_tables" or "bpf_only")), r => Assert.Equal(0UL, r.Value));
    }
}
