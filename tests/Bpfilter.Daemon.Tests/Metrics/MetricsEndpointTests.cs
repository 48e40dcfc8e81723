using System.Text.Json;
using Bpfilter.Daemon.Tests.Enforcement;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>
/// bpfilterd enforcing with --metrics, a ruleset with chains in BPF (a netfilter link, XDP) and one placed in the
/// kernel, packets over a veth pair, and scrapes read by the strict parser: every rule's counters are the ones
/// `bfnft -j list ruleset` prints, the chain sums add them up, and placement, BPF run statistics, commits,
/// generation and refusals say what happened.
/// </summary>
public sealed class MetricsEndpointTests
{
    // inet t/in matches a conntrack helper: the kernel runs it (and its named counter); ip b runs as a
    // BPF_NETFILTER link, netdev x as XDP on the firewall's veth.
    const string Ruleset = """
        table inet t {
            counter seen { }
            chain in {
                type filter hook input priority 0; policy accept;
                ct helper "ftp" drop
                tcp dport 81 counter drop
                tcp dport 82 counter name "seen" counter accept
            }
        }
        table ip b {
            chain in {
                type filter hook input priority 10; policy accept;
                tcp dport 83 counter drop
                ip saddr 198.18.7.2 counter jump sub
            }
            chain sub {
                tcp dport 84 counter drop
                meta l4proto tcp counter
            }
        }
        table netdev x {
            chain ing {
                type filter hook ingress device "DEV" priority 0; policy accept;
                tcp dport 85 counter drop
                ip saddr 198.18.7.2 counter
            }
        }
        """;

    static string SocketPath() => Path.Combine(Path.GetTempPath(), $"bfm-{Guid.NewGuid():N}"[..16] + ".sock");

    [Fact]
    public async Task CountersMatchTheListingAndPlacementCommitsAndBpfStatsAreExported()
    {
        var path = SocketPath();
        using var rig = new EnforcementRig("--metrics", "unix:" + path);
        var start = MetricsClient.Scrape(path);
        Assert.Equal(0UL, Single(start, "bpfilterd_commits_total").Integer);
        Assert.Empty(start["bpfilterd_rule_packets_total"].Samples);
        ulong generation = Single(start, "bpfilterd_generation").Integer;

        rig.Nft(Ruleset.Replace("DEV", rig.FwDev));
        rig.Nft("add rule ip b nochain accept", expectSuccess: false); // ENOENT: an nf_tables refusal
        rig.Nft("add table inet bpfilterd-conntrack", expectSuccess: false); // refused by the backend

        // 81: dropped by the kernel-placed chain, 83: by the netfilter link, 84: in the chain it jumps to,
        // 85: at XDP; 82 and 86 reach the stack. Probes of dropped ports retransmit their SYN until they give up.
        var probes = await Task.WhenAll(new (int Port, bool Expected)[] { (81, false), (82, true), (83, false), (84, false), (85, false), (86, true) }
            .Select(p => Task.Run(() => (p.Port, p.Expected, Got: rig.Delivered(p.Port)))));
        foreach (var p in probes) Assert.True(p.Expected == p.Got, $"port {p.Port}: delivered {p.Got}\n{rig.Daemon.Log}");

        var (metrics, listing) = StableScrapeAndListing(rig, path);

        // every counter statement of every rule, with nft's values, and nothing else
        var listed = ListedRuleCounters(listing);
        Assert.Equal(8, listed.Count);
        var packets = RuleSeries(metrics, "bpfilterd_rule_packets_total");
        var bytes = RuleSeries(metrics, "bpfilterd_rule_bytes_total");
        Assert.Equal(listed.Count, packets.Count);
        Assert.Equal(listed.Count, bytes.Count);
        foreach (var (key, (p, b)) in listed)
        {
            Assert.True(packets.TryGetValue(key, out var scraped), $"no series for {key}");
            Assert.Equal((p, b), (scraped, bytes[key]));
        }
        // each dropped port was counted where it was dropped: kernel, netfilter link, the chain jumped to, XDP
        foreach (var (family, table, chain, port) in new[] { ("inet", "t", "in", 81), ("ip", "b", "in", 83), ("ip", "b", "sub", 84), ("netdev", "x", "ing", 85) })
            Assert.True(listed[(family, table, chain, Handle(listing, family, table, chain, port), 0)].Packets > 0, $"{family} {table} {chain} port {port}");

        // a chain's totals are the sums of its rules' counter statements
        foreach (var chain in listed.GroupBy(l => (l.Key.Family, l.Key.Table, l.Key.Chain)))
        {
            var labels = new[] { ("family", chain.Key.Family), ("table", chain.Key.Table), ("chain", chain.Key.Chain) };
            Assert.Equal(chain.Aggregate(0UL, (s, l) => s + l.Value.Packets), Find(metrics, "bpfilterd_chain_packets_total", labels).Integer);
            Assert.Equal(chain.Aggregate(0UL, (s, l) => s + l.Value.Bytes), Find(metrics, "bpfilterd_chain_bytes_total", labels).Integer);
        }
        Assert.Equal(listed.Select(l => (l.Key.Family, l.Key.Table, l.Key.Chain)).Distinct().Count(), metrics["bpfilterd_chain_packets_total"].Samples.Count);

        // the named counter, as nft lists it
        var seen = listing.RootElement.GetProperty("nftables").EnumerateArray()
            .Single(e => e.TryGetProperty("counter", out var c) && c.ValueKind == JsonValueKind.Object).GetProperty("counter");
        var seenSample = Find(metrics, "bpfilterd_counter_object_packets_total", ("family", "inet"), ("table", "t"), ("name", "seen"));
        Assert.Equal(seen.GetProperty("packets").GetUInt64(), seenSample.Integer);
        Assert.True(seenSample.Integer > 0);
        Assert.Equal(seen.GetProperty("bytes").GetUInt64(), Find(metrics, "bpfilterd_counter_object_bytes_total", ("family", "inet"), ("table", "t"), ("name", "seen")).Integer);

        // placement of every base chain
        var placement = metrics["bpfilterd_chain_placement"].Samples;
        Assert.Equal(3, placement.Count);
        Assert.All(placement, s => Assert.Equal(1UL, s.Integer));
        var kernel = placement.Single(s => s.Label("placement") == "kernel");
        Assert.Equal(("inet", "t", "in"), (kernel.Label("family"), kernel.Label("table"), kernel.Label("chain")));
        Assert.Contains("expression 'ct helper'", kernel.Label("reason"));
        Assert.Equal(new[] { "ip b in", "netdev x ing" }, placement.Where(s => s.Label("placement") == "bpf")
            .Select(s => $"{s.Label("family")} {s.Label("table")} {s.Label("chain")}").Order());
        Assert.All(placement.Where(s => s.Label("placement") == "bpf"), s => Assert.Equal("", s.Label("reason")));

        // BPF run statistics: the programs ran at least once per packet their rules counted
        Assert.Equal(1UL, Single(metrics, "bpfilterd_bpf_stats_enabled").Integer);
        var chains = metrics["bpfilterd_attach_point_chain"].Samples;
        var xdp = chains.Single(s => s.Label("table") == "x").Label("attach_point");
        var nf = chains.Single(s => s.Label("table") == "b").Label("attach_point");
        Assert.Equal(2, chains.Count);
        var ids = rig.ProgramIds(); // the explain report's attach points
        Assert.Equal(2, ids.Count);
        foreach (var (attach, chain, table) in new[] { (xdp, "ing", "x"), (nf, "in", "b") })
        {
            var runs = metrics["bpfilterd_bpf_program_runs_total"].Samples.Single(s => s.Label("attach_point") == attach);
            var time = metrics["bpfilterd_bpf_program_run_time_seconds_total"].Samples.Single(s => s.Label("attach_point") == attach);
            Assert.Equal(runs.Label("program_id"), time.Label("program_id"));
            var counted = listed.Where(l => l.Key.Table == table && l.Key.Chain == chain).Max(l => l.Value.Packets);
            Assert.True(runs.Integer >= counted && counted > 0, $"{attach}: {runs.Integer} runs, a rule counted {counted}");
            Assert.True(time.Value > 0, $"{attach}: run time {time.Raw}");
        }

        // one commit, its duration, the refusals by reason
        Assert.Equal(1UL, Single(metrics, "bpfilterd_commits_total").Integer);
        Assert.Equal(generation + 1, Single(metrics, "bpfilterd_generation").Integer);
        var duration = metrics["bpfilterd_commit_duration_seconds"].Samples;
        Assert.Equal(1UL, duration.Single(s => s.Name.EndsWith("_count")).Integer);
        Assert.True(duration.Single(s => s.Name.EndsWith("_sum")).Value > 0);
        var refusals = metrics["bpfilterd_refusals_total"].Samples.ToDictionary(s => s.Label("reason"), s => s.Integer);
        Assert.Equal(1UL, refusals["nf_tables"]);
        Assert.Equal(1UL, refusals["reserved_table"]);
        Assert.Equal(2UL, refusals.Values.Aggregate(0UL, (a, b) => a + b));

        // the next commit shows at once: a new generation, and the new rule's counter
        rig.Nft($"add rule netdev x ing tcp dport 87 counter drop");
        var after = MetricsClient.Scrape(path);
        Assert.Equal(2UL, Single(after, "bpfilterd_commits_total").Integer);
        Assert.Equal(generation + 2, Single(after, "bpfilterd_generation").Integer);
        Assert.Equal(listed.Count + 1, after["bpfilterd_rule_packets_total"].Samples.Count);
    }

    [Fact]
    public void TheLoopbackPortServesMetricsInTheDaemonsNamespace()
    {
        using var rig = new EnforcementRig("--metrics", "tcp:127.0.0.1:9632");
        rig.Nft("""
            table ip b {
                chain in {
                    type filter hook input priority 0; policy accept;
                    tcp dport 83 counter drop
                }
            }
            """);
        Assert.False(rig.Delivered(83));
        string Http(string target)
        {
            // bash's /dev/tcp in the daemon's namespace, where its loopback is
            var r = rig.Daemon.Ns.Exec("timeout", ["10", "bash", "-c",
                $"exec 3<>/dev/tcp/127.0.0.1/9632 && printf 'GET {target} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3"]);
            Assert.True(r.Exit == 0, r.ToString());
            return r.Stdout;
        }
        var (status, _, body) = MetricsClient.Split(Http("/metrics"));
        Assert.Equal("HTTP/1.1 200 OK", status);
        var metrics = ExpositionParser.Parse(body);
        var listing = rig.Daemon.Bfnft(["-j", "list", "ruleset"]);
        Assert.Equal(ListedRuleCounters(JsonDocument.Parse(listing.Stdout)).Single().Value.Packets,
            Assert.Single(metrics["bpfilterd_rule_packets_total"].Samples).Integer);
        Assert.StartsWith("HTTP/1.1 404 Not Found", Http("/"));
        Assert.Contains("metrics: serving http://127.0.0.1:9632/metrics", rig.Daemon.Log);
    }

    [Fact]
    public void BpfOnlyRefusalsAreCountedByTheirReason()
    {
        var path = SocketPath();
        using var rig = new EnforcementRig("--placement", "bpf-only", "--metrics", "unix:" + path);
        rig.Nft(Ruleset.Replace("DEV", rig.FwDev), expectSuccess: false); // inet t/in cannot run in BPF
        rig.Nft("table ip b { }");
        var metrics = MetricsClient.Scrape(path);
        var refusals = metrics["bpfilterd_refusals_total"].Samples.ToDictionary(s => s.Label("reason"), s => s.Integer);
        Assert.Equal(1UL, refusals["bpf_only"]);
        Assert.Equal(1UL, refusals.Values.Aggregate(0UL, (a, b) => a + b));
        Assert.Equal(1UL, Single(metrics, "bpfilterd_commits_total").Integer);
        Assert.Empty(metrics["bpfilterd_rule_packets_total"].Samples); // nothing of the refused batch was applied
        Assert.Empty(metrics["bpfilterd_chain_placement"].Samples);
    }

    /// <summary>
    /// A scrape and `bfnft -j list ruleset` taken while no counter moved (scraped again after the listing, same
    /// counters): late packets of the probes would otherwise make them differ by what arrived in between.
    /// </summary>
    static (Dictionary<string, MetricFamily>, JsonDocument) StableScrapeAndListing(EnforcementRig rig, string path)
    {
        for (int attempt = 0; ; attempt++)
        {
            var before = MetricsClient.Scrape(path);
            var r = rig.Daemon.Bfnft(["-j", "list", "ruleset"]);
            Assert.True(r.Exit == 0, r.Stderr);
            var after = MetricsClient.Scrape(path);
            string Counters(Dictionary<string, MetricFamily> m) =>
                string.Join("\n", m["bpfilterd_rule_packets_total"].Samples.Concat(m["bpfilterd_rule_bytes_total"].Samples).Select(s => s.Raw));
            if (Counters(before) == Counters(after)) return (after, JsonDocument.Parse(r.Stdout));
            Assert.True(attempt < 5, "the counters kept moving");
            Thread.Sleep(1000);
        }
    }

    /// <summary>(family, table, chain, handle, ordinal of the counter statement) → packets, bytes, from nft's JSON.</summary>
    static Dictionary<(string Family, string Table, string Chain, ulong Handle, int Counter), (ulong Packets, ulong Bytes)> ListedRuleCounters(JsonDocument listing)
    {
        var counters = new Dictionary<(string, string, string, ulong, int), (ulong, ulong)>();
        foreach (var e in listing.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (!e.TryGetProperty("rule", out var rule)) continue;
            int ordinal = 0;
            foreach (var stmt in rule.GetProperty("expr").EnumerateArray())
                if (stmt.TryGetProperty("counter", out var c) && c.ValueKind == JsonValueKind.Object) // not `counter name "seen"`
                    counters.Add((rule.GetProperty("family").GetString()!, rule.GetProperty("table").GetString()!, rule.GetProperty("chain").GetString()!,
                        rule.GetProperty("handle").GetUInt64(), ordinal++), (c.GetProperty("packets").GetUInt64(), c.GetProperty("bytes").GetUInt64()));
        }
        return counters;
    }

    static Dictionary<(string, string, string, ulong, int), ulong> RuleSeries(Dictionary<string, MetricFamily> m, string name) =>
        m[name].Samples.ToDictionary(s => (s.Label("family"), s.Label("table"), s.Label("chain"), ulong.Parse(s.Label("handle")), int.Parse(s.Label("counter"))),
            s => s.Integer);

    /// <summary>The handle of the rule of a chain that matches a destination port, from nft's JSON.</summary>
    static ulong Handle(JsonDocument listing, string family, string table, string chain, int port) =>
        listing.RootElement.GetProperty("nftables").EnumerateArray()
            .Where(e => e.TryGetProperty("rule", out _)).Select(e => e.GetProperty("rule"))
            .Single(r => r.GetProperty("family").GetString() == family && r.GetProperty("table").GetString() == table
                && r.GetProperty("chain").GetString() == chain
                && r.GetProperty("expr").EnumerateArray().Any(x => x.TryGetProperty("match", out var m)
                    && m.GetProperty("right") is { ValueKind: JsonValueKind.Number } right && right.GetInt32() == port))
            .GetProperty("handle").GetUInt64();

    static MetricSample Single(Dictionary<string, MetricFamily> m, string name)
    {
        var s = Assert.Single(m[name].Samples);
        Assert.Empty(s.Labels);
        return s;
    }

    static MetricSample Find(Dictionary<string, MetricFamily> m, string name, params (string Name, string Value)[] labels) =>
        m[name].Samples.Single(s => labels.All(l => s.Label(l.Name) == l.Value));
}
