using System.Diagnostics;
using System.Text;
using Bpfilter.Integration.Tests.Packets;
using Xunit.Abstractions;

namespace Bpfilter.Integration.Tests.Differential;

/// <summary>
/// The generative differential tester (integration/README.md, "Differential tester"): seeded
/// batches of generated rules, packets derived from their constants, kernel nf_tables against
/// bpfilterd --placement bpf-only, delivery and every rule's counter compared.
/// </summary>
public class DifferentialTests(SidesFixture sides, ITestOutputHelper output) : IClassFixture<SidesFixture>
{
    static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out var v) ? v : fallback;

    FirewallSide Kernel => sides.Kernel;
    FirewallSide Daemon => sides.Side(SidesFixture.Role.DaemonBpfOnly, TopologyKind.Routed);

    /// <summary>The generator is deterministic: a seed and batch number give the same rules and packets.</summary>
    [Fact]
    public void DifferentialGeneratorIsDeterministic()
    {
        for (int n = 0; n < 50; n++)
        {
            var a = RuleGenerator.Batch(7, n, 10);
            var b = RuleGenerator.Batch(7, n, 10);
            Assert.Equal(a.Ruleset(), b.Ruleset());
            Assert.Equal(a.Packets().Select(p => p.Line()), b.Packets().Select(p => p.Line()));
            // BFNT_DIFF_DUMP=DIR writes the rulesets and packet lines (to check them with nft by hand)
            if (Environment.GetEnvironmentVariable("BFNT_DIFF_DUMP") is { Length: > 0 } dir)
            {
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, $"b{n}.nft"), a.Ruleset());
                File.WriteAllText(Path.Combine(dir, $"b{n}.packets"), string.Join("\n", a.Packets().Select(p => $"{p.From}: {p.Line()}")));
            }
        }
    }

    /// <summary>
    /// The CI slice: fixed seeds, one batch per scenario (family/hook), each rule counting on its
    /// own; any rule whose counter or verdict differs from the kernel's fails with the replay command.
    /// </summary>
    [Fact]
    public void DifferentialSliceAgreesWithTheKernel()
    {
        var results = new List<(string Scenario, RuleResult R)>();
        var pairs = new Dictionary<string, long>();
        var reports = new StringBuilder();
        var sw = Stopwatch.StartNew();
        int number = 0;
        foreach (var s in Scenario.All)
        {
            var batch = RuleGenerator.Batch(20261203, number++, Env("BFNT_DIFF_RULES", 10), s);
            var r = DiffRunner.RunBatch(batch, Kernel, Daemon);
            results.AddRange(r.Rules.Select(x => (s.Name, x)));
            reports.Append(r.Report);
            pairs[s.Name] = pairs.GetValueOrDefault(s.Name) + r.Pairs;
        }
        output.WriteLine($"{sw.Elapsed.TotalSeconds:F0} s");
        output.WriteLine(DiffRunner.Table(results.Select(x => x.R), x => results.First(y => y.R == x).Scenario, "family/hook", pairs));
        output.WriteLine("refused:\n" + DiffRunner.Reasons(results.Select(x => x.R), RuleOutcome.Refused));
        output.WriteLine("invalid:\n" + DiffRunner.Reasons(results.Select(x => x.R), RuleOutcome.Invalid));
        Assert.True(reports.Length == 0, reports.ToString());
    }

    /// <summary>
    /// A campaign, when BFNT_DIFF_SEED is set (otherwise it does nothing): BFNT_DIFF_BATCHES batches
    /// (default 40) of BFNT_DIFF_RULES rules (default 16), or only batch BFNT_DIFF_BATCH (and only
    /// rule BFNT_DIFF_RULE of it) to replay a difference; BFNT_DIFF_MINUTES stops starting batches after that long;
    /// BFNT_DIFF_FAMILY=ip|ip6|inet|netdev runs only the batches of that family (the others are skipped,
    /// not run). Prints the tables (with rule/packet pairs per family) and every difference;
    /// BFNT_DIFF_OUT=FILE also writes them there.
    /// </summary>
    [Fact]
    public void DifferentialCampaign()
    {
        var seedText = Environment.GetEnvironmentVariable("BFNT_DIFF_SEED");
        if (string.IsNullOrEmpty(seedText)) return;
        int seed = int.Parse(seedText);
        int rules = Env("BFNT_DIFF_RULES", 16);
        int only = Env("BFNT_DIFF_BATCH", -1), onlyRule = Env("BFNT_DIFF_RULE", -1);
        var numbers = only >= 0 ? [only] : Enumerable.Range(0, Env("BFNT_DIFF_BATCHES", 40));
        var results = new List<(string Scenario, RuleResult R)>();
        var reports = new StringBuilder();
        var pairs = new Dictionary<string, long>();
        var family = Environment.GetEnvironmentVariable("BFNT_DIFF_FAMILY") is { Length: > 0 } f ? f : null;
        var outFile = Environment.GetEnvironmentVariable("BFNT_DIFF_OUT");
        var sw = Stopwatch.StartNew();
        int minutes = Env("BFNT_DIFF_MINUTES", 0), ran = 0;
        foreach (var n in numbers)
        {
            if (minutes > 0 && sw.Elapsed.TotalMinutes >= minutes) break;
            var batch = RuleGenerator.Batch(seed, n, rules);
            if (family != null && batch.Scenario.Family != family) continue;
            ran++;
            if (onlyRule >= 0) batch = batch with { Rules = batch.Rules.Where(r => r.Index == onlyRule).ToList() };
            if (only >= 0) output.WriteLine(batch.Ruleset() + string.Join("\n", batch.Packets().Select(p => $"{p.From}: {p.Line()}")));
            var r = DiffRunner.RunBatch(batch, Kernel, Daemon);
            results.AddRange(r.Rules.Select(x => (batch.Scenario.Name, x)));
            reports.Append(r.Report);
            pairs[batch.Scenario.Family] = pairs.GetValueOrDefault(batch.Scenario.Family) + r.Pairs;
            if (outFile != null)
                File.AppendAllText(outFile, $"batch {n} {batch.Scenario.Name}: {r.Rules.Count(x => x.Outcome == RuleOutcome.Different)} different, {r.Pairs} pairs, {sw.Elapsed.TotalSeconds:F0} s\n{r.Report}");
        }
        var text = new StringBuilder();
        text.AppendLine($"seed {seed}, {ran} batches, {results.Count} rules, {pairs.Values.Sum()} rule/packet pairs, {sw.Elapsed.TotalSeconds:F0} s");
        var scenarioOf = results.ToDictionary(x => x.R, x => x.Scenario, ReferenceEqualityComparer.Instance);
        text.AppendLine(DiffRunner.Table(results.Select(x => x.R), x => scenarioOf[x].Split('/')[0], "family", pairs));
        text.AppendLine(DiffRunner.Table(results.Select(x => x.R), x => scenarioOf[x], "family/hook"));
        text.AppendLine(DiffRunner.Table(results.Select(x => x.R), x => x.Rule.Field, "field"));
        text.AppendLine(DiffRunner.Table(results.Select(x => x.R), x => x.Rule.Form, "form"));
        text.AppendLine("refused by bpf-only, by reason:\n" + DiffRunner.Reasons(results.Select(x => x.R), RuleOutcome.Refused));
        text.AppendLine("refused by the kernel (generator mistakes):\n" + DiffRunner.Reasons(results.Select(x => x.R), RuleOutcome.Invalid));
        text.AppendLine("differences:\n" + reports);
        output.WriteLine(text.ToString());
        if (outFile != null) File.AppendAllText(outFile, text.ToString());
    }
}
