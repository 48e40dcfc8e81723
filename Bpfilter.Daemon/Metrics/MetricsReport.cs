using System.Globalization;
using Bpfilter.Daemon.Enforcement;
using Bpfilter.Daemon.Placement;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Metrics;

/// <summary>
/// What GET /metrics answers. Everything about the ruleset is read under the engine's lock as one request
/// (<see cref="NfTablesEndpoint.Observe{T}"/>): one committed generation, and rule counters with exactly the
/// totals `nft list ruleset` prints at that moment (BPF maps through the engine's counter path, kernel-placed
/// rules from one dump of the kernel's counters). The text is written after the lock is let go.
/// </summary>
public static class MetricsReport
{
    /// <param name="bpfStatsOn">whether the kernel is accounting BPF run time and count now</param>
    public static string Build(NfTablesEndpoint engine, EnforcingBackend? backend, BatchMetrics batches, bool bpfStatsOn)
    {
        var (generation, rules, objects, placements, runs) = engine.Observe(r => (r.Generation, r.RuleCounters().ToList(),
            r.ObjectCounters().ToList(), backend?.Placements() ?? [], backend?.RunStats() ?? []));
        var commits = batches.Read();
        var x = new Exposition();

        x.Family("bpfilterd_generation", MetricType.Gauge, "nf_tables generation of the committed ruleset (nft list ruleset prints it as # generation)")
            .Sample((ulong)generation);

        x.Family("bpfilterd_rule_packets_total", MetricType.Counter,
            "Packets counted by a rule's counter statement, as nft list ruleset prints it; counter is the statement's ordinal in the rule, from 0");
        foreach (var c in rules) x.Sample(c.Value.Packets, RuleKey(c));
        x.Family("bpfilterd_rule_bytes_total", MetricType.Counter, "Bytes counted by a rule's counter statement, as nft list ruleset prints it");
        foreach (var c in rules) x.Sample(c.Value.Bytes, RuleKey(c));

        // nf_tables counts nothing per chain (no policy counter, no entry counter): the chain totals are the sums of
        // its rules' counter statements, and a chain without any has no series.
        var chains = rules.GroupBy(c => (c.Family, c.Table, c.Chain))
            .Select(g => (Key: g.Key, Packets: Sum(g, c => c.Value.Packets), Bytes: Sum(g, c => c.Value.Bytes))).ToList();
        x.Family("bpfilterd_chain_packets_total", MetricType.Counter,
            "Sum of the packets counted by the counter statements of the chain's rules (nf_tables has no chain counter; chains without counter statements have no series)");
        foreach (var c in chains) x.Sample(c.Packets, ChainKey(c.Key.Family, c.Key.Table, c.Key.Chain));
        x.Family("bpfilterd_chain_bytes_total", MetricType.Counter, "Sum of the bytes counted by the counter statements of the chain's rules");
        foreach (var c in chains) x.Sample(c.Bytes, ChainKey(c.Key.Family, c.Key.Table, c.Key.Chain));

        x.Family("bpfilterd_counter_object_packets_total", MetricType.Counter, "Packets of a named counter object, as nft list counters prints it");
        foreach (var o in objects) x.Sample(o.Value.Packets, ObjectKey(o));
        x.Family("bpfilterd_counter_object_bytes_total", MetricType.Counter, "Bytes of a named counter object, as nft list counters prints it");
        foreach (var o in objects) x.Sample(o.Value.Bytes, ObjectKey(o));

        x.Family("bpfilterd_chain_placement", MetricType.Gauge,
            "1 for each base chain of the committed ruleset, where it runs: placement=bpf (XDP, tcx or a BPF_NETFILTER link) or kernel (the kernel's nf_tables) with the reason");
        foreach (var p in placements)
            x.Sample(1UL, [.. ChainKey(p.Chain.Family, p.Chain.Table, p.Chain.Chain),
                ("placement", p.Side == PlacementSide.Bpf ? "bpf" : "kernel"), ("reason", p.Side == PlacementSide.Bpf ? "" : p.Reason)]);

        x.Family("bpfilterd_attach_point_chain", MetricType.Gauge, "1 for each base chain compiled into the program of a BPF attach point");
        foreach (var a in runs)
            foreach (var c in a.Chains)
                x.Sample(1UL, [("attach_point", a.Key), ("hook", a.Hook), .. ChainKey(c.Family, c.Table, c.Chain)]);

        x.Family("bpfilterd_bpf_stats_enabled", MetricType.Gauge,
            "1 while the kernel accounts BPF run time and count (bpfilterd holds BPF_ENABLE_STATS, or sysctl kernel.bpf_stats_enabled=1)")
            .Sample(bpfStatsOn ? 1UL : 0UL);
        var counted = runs.Where(a => a.Stats != null).ToList();
        x.Family("bpfilterd_bpf_program_runs_total", MetricType.Counter,
            "run_cnt of the program an attach point's link runs (bpf_prog_info; counts only while BPF stats are on; a new program starts from 0)");
        foreach (var a in counted) x.Sample(a.Stats!.Value.RunCount, ProgramKey(a));
        x.Family("bpfilterd_bpf_program_run_time_seconds_total", MetricType.Counter,
            "run_time_ns of the program an attach point's link runs, in seconds (bpf_prog_info; counts only while BPF stats are on)");
        foreach (var a in counted) x.Sample(a.Stats!.Value.RunTimeNs / 1e9, ProgramKey(a));

        x.Family("bpfilterd_commits_total", MetricType.Counter, "Batches committed that changed the ruleset (each makes a new generation)")
            .Sample(commits.Commits);
        x.Family("bpfilterd_commit_duration_seconds", MetricType.Histogram,
            "Time from a batch's arrival until it was committed on every side (validation, lift, BPF load and attach, kernel placement, swap)")
            .Histogram(commits.Buckets, commits.Seconds, commits.Commits);
        x.Family("bpfilterd_refusals_total", MetricType.Counter,
            "Batches refused, by reason: nf_tables (an error the kernel's nf_tables gives too), bpf_only, bpf_load, kernel_placement, reserved_table, conntrack, internal, backend");
        foreach (var (reason, n) in commits.Refusals) x.Sample(n, ("reason", reason));
        return x.ToString();
    }

    static ulong Sum(IEnumerable<RuleCounter> counters, Func<RuleCounter, ulong> value)
    {
        ulong s = 0;
        foreach (var c in counters) s = unchecked(s + value(c)); // wraps as the u64 totals it adds do
        return s;
    }

    static (string, string)[] RuleKey(RuleCounter c) =>
    [
        .. ChainKey(c.Family, c.Table, c.Chain),
        ("handle", c.Handle.ToString(CultureInfo.InvariantCulture)), ("counter", c.Ordinal.ToString(CultureInfo.InvariantCulture)),
    ];

    static (string, string)[] ChainKey(byte family, string table, string chain) =>
        [("family", FamilyNames.Of(family)), ("table", table), ("chain", chain)];

    static (string, string)[] ObjectKey(ObjectCounter o) => [("family", FamilyNames.Of(o.Family)), ("table", o.Table), ("name", o.Name)];

    static (string, string)[] ProgramKey(AttachPointRuns a) =>
        [("attach_point", a.Key), ("hook", a.Hook), ("program_id", a.Stats!.Value.ProgramId.ToString(CultureInfo.InvariantCulture))];
}
