using Bpfilter.Daemon.Enforcement;
using Nft.Engine;

namespace Bpfilter.Daemon.Metrics;

/// <summary>
/// Counts what became of the batches (<see cref="NfTablesOptions.BatchFinished"/>): commits that made a new
/// generation with how long each took (a histogram), and refusals by reason. Every reason bpfilterd can give
/// is present from the start at 0, so that a rate over it is defined before the first refusal.
/// </summary>
public sealed class BatchMetrics
{
    /// <summary>Upper bounds of the commit duration buckets, in seconds: a commit takes from a fraction of a millisecond (elements only) to seconds (large rulesets loaded into BPF and the kernel).</summary>
    public static readonly double[] Bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Every refusal reason: the emulation's own, then the enforcing backend's.</summary>
    public static readonly string[] Reasons =
    [
        BatchOutcome.NfTablesReason, RefusalReason.BpfOnly, RefusalReason.BpfLoad, RefusalReason.KernelPlacement,
        RefusalReason.ReservedTable, RefusalReason.Conntrack, RefusalReason.Internal, "backend",
    ];

    readonly object _gate = new();
    readonly ulong[] _buckets = new ulong[Bounds.Length]; // not cumulative: observations in (Bounds[i-1], Bounds[i]]
    readonly Dictionary<string, ulong> _refusals = Reasons.ToDictionary(r => r, _ => 0UL);
    ulong _commits;
    double _seconds;

    public void Record(BatchOutcome outcome)
    {
        lock (_gate)
        {
            switch (outcome.Result)
            {
                case BatchResult.Committed:
                    double s = outcome.Elapsed.TotalSeconds;
                    _commits++;
                    _seconds += s;
                    int i = Array.FindIndex(Bounds, b => s <= b);
                    if (i >= 0) _buckets[i]++;
                    break;
                case BatchResult.Refused:
                    var reason = outcome.Reason ?? "backend";
                    _refusals[reason] = _refusals.GetValueOrDefault(reason) + 1;
                    break;
            }
        }
    }

    /// <summary>The counts as they stand: commits, their cumulative buckets and total seconds, refusals by reason.</summary>
    public Snapshot Read()
    {
        lock (_gate)
        {
            var cumulative = new List<(double, ulong)>(Bounds.Length);
            ulong sum = 0;
            for (int i = 0; i < Bounds.Length; i++) cumulative.Add((Bounds[i], sum += _buckets[i]));
            return new Snapshot(_commits, cumulative, _seconds, _refusals.OrderBy(r => r.Key, StringComparer.Ordinal).ToList());
        }
    }

    public sealed record Snapshot(ulong Commits, IReadOnlyList<(double UpperBound, ulong Count)> Buckets, double Seconds,
        IReadOnlyList<KeyValuePair<string, ulong>> Refusals);
}
