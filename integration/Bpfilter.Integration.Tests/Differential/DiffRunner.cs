using System.Text;
using System.Text.RegularExpressions;
using Bpfilter.Integration.Tests.Harness;
using Bpfilter.Integration.Tests.Packets;

namespace Bpfilter.Integration.Tests.Differential;

/// <summary>What one side did with a batch: per packet delivered or not, per rule tag its counter.</summary>
public sealed record DiffSide(bool Loaded, string LoadError, IReadOnlyList<bool> Delivered, IReadOnlyDictionary<string, string> Counters,
    IReadOnlyList<IReadOnlyDictionary<string, string>> PerPacket, string Listing, int Stray);

/// <summary>Per rule outcome of a batch, for the campaign's table.</summary>
public enum RuleOutcome { Identical, Different, Refused, Invalid }

public sealed record RuleResult(GenRule Rule, RuleOutcome Outcome, string Reason);

/// <param name="Pairs">rule/packet pairs compared: rules both sides ran times packets sent</param>
public sealed record BatchResult(GenBatch Batch, IReadOnlyList<RuleResult> Rules, string Report, int Pairs);

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
            return new DiffSide(true, "", delivered, Counters(list), per, HashMapOrder.Normalize(Listing.Comparable(list)), side.Topology.StrayCount);
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
        int pairs = 0;
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
            pairs = rules.Count * crafted.Count;
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
                foreach (var (_, what) in diff) report.AppendLine(what);
                if (report.Length > 0)
                {
                    report.Insert(0, $"--- batch {batch.Number} ({batch.Scenario.Name}), replay: {batch.Replay()}\n");
                    if (a.Listing != d.Listing) report.AppendLine(UnifiedDiff.Create(a.Listing, d.Listing, "kernel", "bpfilterd"));
                }
            }
            var bad = diff.Select(x => x.Tag).ToHashSet();
            foreach (var r in rules)
                results[r.Index] = new(r, bad.Contains(r.Tag) || r.SubChains.Any(bad.Contains) ? RuleOutcome.Different : RuleOutcome.Identical, "");
            if (bad.Contains("*")) foreach (var r in rules) if (results[r.Index].Outcome == RuleOutcome.Identical && bad.Count == 1)
                        results[r.Index] = new(r, RuleOutcome.Different, "");
        }
        return new BatchResult(batch, batch.Rules.Select(r => results[r.Index]).ToList(), report.ToString(), pairs);
    }

    static List<(string Tag, string What)> Differences(List<GenRule> rules, List<PacketSpec> specs, DiffSide a, DiffSide d)
    {
        var list = new List<(string, string)>();
        if (!a.Loaded || !d.Loaded)
        {
            if (a.Loaded != d.Loaded) list.Add(("*", $"load: kernel {(a.Loaded ? "ok" : a.LoadError)}, bpfilterd {(d.Loaded ? "ok" : d.LoadError)}"));
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
            string? culprit = null;
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
                        var follows = culprit == null ? "" : $" (may follow from {culprit})";
                        culprit ??= t;
                        list.Add((t, $"rule {RuleText(t)}{follows}\n  packet p{i}: {specs[i].Layers.Select(l => l.Source).Aggregate((x, y) => x + " / " + y)} from {specs[i].From}\n" +
                            $"  kernel: {ka}, bpfilterd: {kd}; delivered: kernel {a.Delivered[i]}, bpfilterd {d.Delivered[i]}"));
                    }
                }
            }
            if (a.Delivered[i] != d.Delivered[i] && culprit == null)
                list.Add(("*", $"packet p{i} ({string.Join(" / ", specs[i].Layers.Select(l => l.Source))} from {specs[i].From}): delivered by kernel {a.Delivered[i]}, by bpfilterd {d.Delivered[i]} (no counter differs)"));
        }
        if (a.PerPacket.Count == 0)
            foreach (var t in tags)
                if (a.Counters.GetValueOrDefault(t) != d.Counters.GetValueOrDefault(t))
                    list.Add((t, $"rule {RuleText(t)}: counter kernel {a.Counters.GetValueOrDefault(t)}, bpfilterd {d.Counters.GetValueOrDefault(t)}"));
        if (list.Count == 0 && a.Listing != d.Listing) list.Add(("*", "the listings differ outside counters"));
        return list;
    }

    /// <summary>
    /// The campaign's table: per family/hook and per expression kind, generated, accepted (and its
    /// share), identical (share of accepted), different, refused; with <paramref name="pairs"/>
    /// (per key) also the rule/packet pairs compared.
    /// </summary>
    public static string Table(IEnumerable<RuleResult> results, Func<RuleResult, string> key, string title, IReadOnlyDictionary<string, long>? pairs = null)
    {
        var sb = new StringBuilder();
        var pairHead = pairs == null ? "" : " rule/packet pairs |";
        sb.AppendLine($"| {title} | generated | accepted | identical | different | refused (bpf-only) | invalid (kernel refuses) |{pairHead}");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|" + (pairs == null ? "" : "---:|"));
        static string Pct(int n, int of) => of == 0 ? "-" : $"{100.0 * n / of:F1} %";
        void Row(string name, IReadOnlyCollection<RuleResult> g, long? p)
        {
            int n(RuleOutcome o) => g.Count(r => r.Outcome == o);
            int accepted = n(RuleOutcome.Identical) + n(RuleOutcome.Different);
            sb.AppendLine($"| {name} | {g.Count} | {accepted} ({Pct(accepted, g.Count)}) | {n(RuleOutcome.Identical)} ({Pct(n(RuleOutcome.Identical), accepted)}) | " +
                $"{n(RuleOutcome.Different)} | {n(RuleOutcome.Refused)} | {n(RuleOutcome.Invalid)} |" + (p is { } x ? $" {x} |" : ""));
        }
        foreach (var g in results.GroupBy(key).OrderBy(g => g.Key, StringComparer.Ordinal))
            Row(g.Key, g.ToList(), pairs?.GetValueOrDefault(g.Key));
        Row("**total**", results.ToList(), pairs?.Values.Sum());
        return sb.ToString();
    }

    public static string Reasons(IEnumerable<RuleResult> results, RuleOutcome which) =>
        string.Join("\n", results.Where(r => r.Outcome == which).GroupBy(r => r.Reason).OrderByDescending(g => g.Count())
            .Select(g => $"  {g.Count(),5}  {g.Key}  (e.g. {g.First().Rule.Text})"));
}
