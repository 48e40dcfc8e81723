using System.Text;
using System.Text.RegularExpressions;
using Bpfilter.Integration.Tests.Harness;
using Bpfilter.Integration.Tests.Packets;

namespace Bpfilter.Integration.Tests.Differential;

/// <summary>What one side did with a batch: per packet delivered or not, per rule tag its counter.</summary>
public sealed record DiffSide(bool Loaded, string LoadError, IReadOnlyList<bool> Delivered, IReadOnlyDictionary<string, string> Counters,
    IReadOnlyList<IReadOnlyDictionary<string, string>> PerPacket, string Listing, int Stray);

/// <summary>Per rule outcome of a batch, for the campaign's table.</summary>
public enum RuleOutcome { Identical, Different, Known, Refused, Invalid }

public sealed record RuleResult(GenRule Rule, RuleOutcome Outcome, string Reason);

public sealed record BatchResult(GenBatch Batch, IReadOnlyList<RuleResult> Rules, string Report)
{
    /// <summary>Differences listed in integration/README.md's known differences (not failed on).</summary>
    public string Known { get; init; } = "";
}

/// <summary>
/// Runs a generated batch on the kernel and on bpfilterd --placement bpf-only (so every accepted rule
/// runs in BPF; a rule BPF cannot run is refused and counted by reason), compares delivery per
/// packet and every rule's counter, and on a difference runs again reading the counters after
/// each packet, so that the report names the rule and the packet.
/// </summary>
public static partial class DiffRunner
{
    [GeneratedRegex(@"counter packets (\d+) bytes (\d+).*comment ""([^""]+)""")]
    private static partial Regex CounterLine();

    public static int WaitMs =>
        int.TryParse(Environment.GetEnvironmentVariable("BFNT_DIFF_WAIT_MS"), out var ms) && ms > 0 ? ms : 150;

    static Dictionary<string, string> Counters(string listing)
    {
        var d = new Dictionary<string, string>();
        foreach (Match m in CounterLine().Matches(listing)) d[m.Groups[3].Value] = $"{m.Groups[1].Value}/{m.Groups[2].Value}";
        return d;
    }

    static PacketCase Case(GenBatch b, string ruleset, IReadOnlyList<PacketSpec> specs) => new($"diff-{b.Seed}-{b.Number}", ruleset, specs);

    static ProcessResult Load(FirewallSide side, string ruleset)
    {
        side.Revive();
        side.Nft(["flush", "ruleset"]);
        return side.Nft(["-f", "-"], ruleset);
    }

    static readonly Regex Digits = new(@"\d+");

    /// <summary>Why a side refused a one-rule ruleset: the daemon's log line or nft's first error line.</summary>
    static string Reason(FirewallSide side, GenBatch b, GenRule r)
    {
        int start = side.DaemonLog.Length;
        var load = Load(side, b.Ruleset([r]));
        if (load.Exit == 0) return "";
        var log = side.DaemonLog[Math.Min(start, side.DaemonLog.Length)..];
        var line = log.Split('\n').FirstOrDefault(l => l.Contains("expression") || l.Contains("cannot") || l.Contains("refus") || l.Contains("not supported"))
            ?? load.Stderr.Split('\n').FirstOrDefault(l => l.Contains("Error")) ?? load.Stderr.Trim();
        // keep what bpfilterd says about the rule, not where it is
        line = Regex.Replace(line, @"^.*?(cannot be lifted|transaction refused \(errno \d+\)): ", "");
        line = Regex.Replace(line, @"table \S+ difft chain c(: | rule \d+: )", "").Trim();
        return line.Length > 140 ? line[..140] : line;
    }

    static DiffSide Run(FirewallSide side, PacketCase c, IReadOnlyList<CraftedPacket> packets, int waitMs, bool perPacket)
    {
        side.Revive();
        side.Nft(["flush", "ruleset"]);
        side.Topology.Prepare(c);
        try
        {
            var load = side.Nft(["-f", "-"], c.Ruleset);
            if (load.Exit != 0) return new DiffSide(false, load.Stderr, [], new Dictionary<string, string>(), [], "", 0);
            side.Topology.Drain();
            side.Topology.ResetStray();
            var delivered = new List<bool>();
            var per = new List<IReadOnlyDictionary<string, string>>();
            foreach (var p in packets)
            {
                delivered.Add(side.Topology.SendAndObserve(p, waitMs));
                if (perPacket) per.Add(Counters(side.Nft(["list", "ruleset"]).Stdout));
            }
            var list = side.Nft(["list", "ruleset"]).Stdout;
            side.Topology.Drain();
            return new DiffSide(true, "", delivered, Counters(list), per, Listing.Comparable(list), side.Topology.StrayCount);
        }
        finally { side.Topology.Restore(c); }
    }

    public static BatchResult RunBatch(GenBatch batch, FirewallSide kernel, FirewallSide daemon)
    {
        var results = new Dictionary<int, RuleResult>();
        var rules = batch.Rules.ToList();
        // rules the kernel refuses are the generator's mistakes; rules bpf-only refuses are counted by reason
        if (Load(kernel, batch.Ruleset(rules)).Exit != 0)
            foreach (var r in rules.ToList())
                if (Load(kernel, batch.Ruleset([r])).Exit != 0)
                {
                    results[r.Index] = new(r, RuleOutcome.Invalid, Reason(kernel, batch, r));
                    rules.Remove(r);
                }
        if (rules.Count > 0 && Load(daemon, batch.Ruleset(rules)).Exit != 0)
            foreach (var r in rules.ToList())
            {
                var why = Reason(daemon, batch, r);
                if (why.Length > 0)
                {
                    results[r.Index] = new(r, RuleOutcome.Refused, Digits.Replace(why, "N"));
                    rules.Remove(r);
                }
            }
        var report = new StringBuilder();
        var knownReport = new StringBuilder();
        if (rules.Count > 0)
        {
            var specs = new List<PacketSpec>();
            var crafted = new List<CraftedPacket>();
            int j = 0;
            foreach (var p in batch.Packets())
            {
                var spec = new PacketSpec($"p{j}", p.From, true, p.Line().Split('/', StringSplitOptions.TrimEntries).Select(Layer.Parse).ToList(), j);
                j++;
                try
                {
                    var one = PacketRunner.Craft(new PacketCase(Case(batch, "", []).Name, "", [spec]));
                    specs.Add(spec);
                    crafted.Add(one[0]);
                }
                catch (FormatException) { }
            }
            var c = Case(batch, batch.Ruleset(rules), specs);
            var a = Run(kernel, c, crafted, WaitMs, false);
            var d = Run(daemon, c, crafted, WaitMs, false);
            var diff = Differences(rules, specs, a, d);
            if (diff.Count > 0)
            {
                // again, slower, with the counters read after each packet: what differs, and where
                a = Run(kernel, c, crafted, WaitMs * 4, true);
                d = Run(daemon, c, crafted, WaitMs * 4, true);
                diff = Differences(rules, specs, a, d);
                foreach (var (tag, what, k) in diff) (k == null ? report : knownReport).AppendLine(k == null ? what : $"(known: {k}) {what}");
                if (report.Length > 0)
                {
                    report.Insert(0, $"--- batch {batch.Number} ({batch.Scenario.Name}), replay: {batch.Replay()}\n");
                    if (a.Listing != d.Listing) report.AppendLine(UnifiedDiff.Create(a.Listing, d.Listing, "kernel", "bpfilterd"));
                }
                if (knownReport.Length > 0) knownReport.Insert(0, $"--- batch {batch.Number} ({batch.Scenario.Name}), replay: {batch.Replay()}\n");
            }
            var bad = diff.Where(x => x.Known == null).Select(x => x.Tag).ToHashSet();
            var known = diff.Where(x => x.Known != null).GroupBy(x => x.Tag).ToDictionary(g => g.Key, g => g.First().Known!);
            foreach (var r in rules)
            {
                bool differs = bad.Contains(r.Tag) || r.SubChains.Any(bad.Contains);
                var k = known.GetValueOrDefault(r.Tag) ?? r.SubChains.Select(known.GetValueOrDefault).FirstOrDefault(x => x != null);
                results[r.Index] = new(r, differs ? RuleOutcome.Different : k != null ? RuleOutcome.Known : RuleOutcome.Identical, k ?? "");
            }
            if (bad.Contains("*")) foreach (var r in rules) if (results[r.Index].Outcome == RuleOutcome.Identical && bad.Count == 1)
                        results[r.Index] = new(r, RuleOutcome.Different, "");
        }
        return new BatchResult(batch, batch.Rules.Select(r => results[r.Index]).ToList(), report.ToString()) { Known = knownReport.ToString() };
    }

    /// <summary>
    /// Differences explained in integration/README.md ("Known differences"), reported but not failed
    /// on: null when the difference is new. The kernel reads 1-, 2- and 4-byte aligned transport
    /// fields of a non-first fragment through nft_payload_fast_eval, which does not check the
    /// fragment offset (IPv4: the fragment's data at the transport offset; IPv6: thoff stays 0, so
    /// the bytes from the start of the skb's data); bpfilterd never matches them, like the slow path.
    /// </summary>
    public static string? KnownDifference(GenRule? rule, PacketSpec packet)
    {
        bool laterFragment = packet.Layers.Any(l => l.Kind is "ip4" or "ip6" && l.Has("frags") && l.Text("pick") is { } pk && !pk.Split(',').Contains("0"));
        bool transport = rule != null && System.Text.RegularExpressions.Regex.IsMatch(rule.Match, @"\b(tcp|udp|icmp|icmpv6) ");
        return laterFragment && transport ? "transport field of a non-first fragment (kernel fast path)" : null;
    }

    static List<(string Tag, string What, string? Known)> Differences(List<GenRule> rules, List<PacketSpec> specs, DiffSide a, DiffSide d)
    {
        var list = new List<(string, string, string?)>();
        if (!a.Loaded || !d.Loaded)
        {
            if (a.Loaded != d.Loaded) list.Add(("*", $"load: kernel {(a.Loaded ? "ok" : a.LoadError)}, bpfilterd {(d.Loaded ? "ok" : d.LoadError)}", null));
            return list;
        }
        var byTag = rules.ToDictionary(r => r.Tag);
        foreach (var r in rules)
            foreach (var sub in r.SubChains)
                byTag[sub] = r;
        string RuleText(string tag) => byTag.TryGetValue(tag, out var r) ? $"{r.Text}  [{r.Kind}]" : tag;
        // in chain order (a rule's own counter, then its chains'): the first rule that differs for a
        // packet is the cause; the later ones may only see the packet differently because of it
        var tags = a.Counters.Keys.Union(d.Counters.Keys)
            .OrderBy(t => byTag.TryGetValue(t, out var r) ? r.Index : int.MaxValue).ThenBy(t => t.Length).ThenBy(t => t, StringComparer.Ordinal).ToList();
        for (int i = 0; i < specs.Count; i++)
        {
            string? culprit = null, culpritKnown = null;
            if (a.PerPacket.Count > 0)
            {
                var before = i == 0 ? null : a.PerPacket[i - 1];
                var beforeD = i == 0 ? null : d.PerPacket[i - 1];
                foreach (var t in tags)
                {
                    string Delta(IReadOnlyDictionary<string, string>? prev, IReadOnlyDictionary<string, string> now)
                    {
                        var n = now.GetValueOrDefault(t, "0/0").Split('/');
                        var o = (prev?.GetValueOrDefault(t, "0/0") ?? "0/0").Split('/');
                        return long.Parse(n[0]) - long.Parse(o[0]) > 0 ? "matched" : "no match";
                    }
                    var ka = Delta(before, a.PerPacket[i]);
                    var kd = Delta(beforeD, d.PerPacket[i]);
                    if (ka != kd)
                    {
                        var known = culprit == null ? KnownDifference(byTag.GetValueOrDefault(t), specs[i]) : culpritKnown is { } ck ? $"follows from {culprit}: {ck}" : null;
                        if (culprit == null) culpritKnown = known;
                        culprit ??= t;
                        list.Add((t, $"rule {RuleText(t)}\n  packet p{i}: {specs[i].Layers.Select(l => l.Source).Aggregate((x, y) => x + " / " + y)} from {specs[i].From}\n" +
                            $"  kernel: {ka}, bpfilterd: {kd}; delivered: kernel {a.Delivered[i]}, bpfilterd {d.Delivered[i]}", known));
                    }
                }
            }
            if (a.Delivered[i] != d.Delivered[i] && culprit == null)
                list.Add(("*", $"packet p{i} ({string.Join(" / ", specs[i].Layers.Select(l => l.Source))} from {specs[i].From}): delivered by kernel {a.Delivered[i]}, by bpfilterd {d.Delivered[i]} (no counter differs)", null));
        }
        if (a.PerPacket.Count == 0)
            foreach (var t in tags)
                if (a.Counters.GetValueOrDefault(t) != d.Counters.GetValueOrDefault(t))
                    list.Add((t, $"rule {RuleText(t)}: counter kernel {a.Counters.GetValueOrDefault(t)}, bpfilterd {d.Counters.GetValueOrDefault(t)}", null));
        if (list.Count == 0 && a.Listing != d.Listing) list.Add(("*", "the listings differ outside counters", null));
        return list;
    }

    /// <summary>The campaign's table: per family/hook and per expression kind, generated, accepted, identical, different, refused.</summary>
    public static string Table(IEnumerable<RuleResult> results, Func<RuleResult, string> key, string title)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"| {title} | generated | accepted | identical | different | known | refused (bpf-only) | invalid (kernel refuses) |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var g in results.GroupBy(key).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            int n(RuleOutcome o) => g.Count(r => r.Outcome == o);
            sb.AppendLine($"| {g.Key} | {g.Count()} | {n(RuleOutcome.Identical) + n(RuleOutcome.Different) + n(RuleOutcome.Known)} | {n(RuleOutcome.Identical)} | {n(RuleOutcome.Different)} | {n(RuleOutcome.Known)} | {n(RuleOutcome.Refused)} | {n(RuleOutcome.Invalid)} |");
        }
        var all = results.ToList();
        int t(RuleOutcome o) => all.Count(r => r.Outcome == o);
        sb.AppendLine($"| **total** | {all.Count} | {t(RuleOutcome.Identical) + t(RuleOutcome.Different) + t(RuleOutcome.Known)} | {t(RuleOutcome.Identical)} | {t(RuleOutcome.Different)} | {t(RuleOutcome.Known)} | {t(RuleOutcome.Refused)} | {t(RuleOutcome.Invalid)} |");
        return sb.ToString();
    }

    public static string Reasons(IEnumerable<RuleResult> results, RuleOutcome which) =>
        string.Join("\n", results.Where(r => r.Outcome == which).GroupBy(r => r.Reason).OrderByDescending(g => g.Count())
            .Select(g => $"  {g.Count(),5}  {g.Key}  (e.g. {g.First().Rule.Text})"));
}
