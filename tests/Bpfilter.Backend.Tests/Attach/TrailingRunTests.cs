using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Testing;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// <see cref="GroupedRunEdit"/> with each chain's trailing run kept from earlier prepares (<see cref="TrailingRun"/>)
/// finds the edit a walk of the run finds, over random appends (fresh key values, repeated ones, another key, a
/// jump, a rule that ends the chain, another verdict), inserts, deletes and replaces of one XDP chain, committed
/// one after the other: every condition of the edit occurs. What then runs is what a full compile gives (which
/// caught a delete leaving the code of a verdict no element of the map had any more).
/// </summary>
[Collection("attach")]
public class TrailingRunTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);

    static Ruleset Rules(List<Rule> rules) => new(
        ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.ToValueList())),
        ValueList.Of(new Chain("t/r", ValueList.Of(Counted(1, Verdict.Accept, Matcher.Eq(Fields.Tcp.Dport, U16(22)))))),
        ValueList<Backend.Ir.Set>.Empty);

    static string Describe((CompiledProgram Compiled, MapDiff Diff)? edit) => edit is not { } e ? "none" : string.Join("\n",
        e.Compiled.CounterSlots.OrderBy(kv => kv.Key).Select(kv => $"slot {kv.Key}={kv.Value}")
            .Append($"used {e.Compiled.CounterSlotsUsed}")
            .Concat(e.Compiled.SetLayouts.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"set {kv.Key} {kv.Value.Set}"))
            .Concat(e.Diff.Changes.Select(c => $"{c.Map} -{string.Join(",", c.Deletes.Select(Convert.ToHexString))} +{string.Join(",", c.Upserts.Select(EditRig.Hex))}")));

    [Fact]
    public void KeptTrailingRunsFindTheEditAWalkOfTheRunFinds()
    {
        var rng = new Random(7);
        ulong next = 100;
        Rule Dport(int port, Verdict? v = null) => Counted(next++, v ?? Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16((ulong)port)));
        Rule Fresh() => Dport(1000 + rng.Next(400));
        var rules = Enumerable.Range(0, 20).Select(_ => Fresh()).ToList();
        using var rig = new EditRig(Rules(rules));
        rig.Commit(Rules(rules));
        var runs = new ChainFolds<TrailingRun>();
        var outcomes = new Dictionary<string, int>();
        var undo = false;
        for (var step = 0; step < 160; step++)
        {
            var now = rules.ToList();
            // a rule appended that no rule after it may join is taken back at the next step, so that the run grows on
            var kind = undo ? "delete last" : rng.Next(20) switch
            {
                < 9 => "append",
                9 => "append repeated value",
                10 => "append other key",
                11 => "append jump",
                12 => "append ends chain",
                13 => "append accept",
                14 or 15 => "insert",
                16 or 17 => "delete",
                _ => "replace",
            };
            switch (kind)
            {
                case "append": now.Add(Fresh()); break;
                case "append repeated value" when now.Count > 0:
                    now.Add(Dport(RuleGroupingValue(now[rng.Next(now.Count)]) ?? 1000)); break;
                case "append other key": now.Add(Counted(next++, Verdict.Drop, Matcher.Eq(Fields.Tcp.Dport, U16((ulong)rng.Next(100))))); break;
                case "append jump": now.Add(Dport(2000 + rng.Next(100), Verdict.Jump("t/r"))); break;
                case "append ends chain": now.Add(new Rule(ValueList<Matcher>.Empty, Verdict.Drop, next++)); break;
                case "append accept": now.Add(Dport(3000 + rng.Next(100), Verdict.Accept)); break;
                case "insert": now.Insert(rng.Next(now.Count + 1), Fresh()); break;
                case "delete" when now.Count > 0: now.RemoveAt(rng.Next(now.Count)); break;
                case "replace" when now.Count > 0: now[rng.Next(now.Count)] = Fresh(); break;
                case "delete last" when now.Count > 0: now.RemoveAt(now.Count - 1); break;
            }
            undo = kind is "append repeated value" or "append other key" or "append jump" or "append ends chain" or "append accept";
            // keep the chain near the grouping threshold, and the rule that ends it rare
            if (now.Count > 60 || now.Count(r => r.Matchers.IsEmpty) > 1) now = now.Where(r => !r.Matchers.IsEmpty).Take(30).ToList();
            var chains = rig.Current.BaseChains;
            var was = UnitSource.Of(rig.Current, chains);
            var staged = Rules(now);
            var source = UnitSource.Of(staged, staged.BaseChains);
            var walked = GroupedRunEdit.Between(rig.Program, was, source);
            var kept = GroupedRunEdit.Between(rig.Program, was, source, runs);
            Assert.Equal(Describe(walked), Describe(kept));
            var outcome = $"{kind}: {(kept != null ? "edit" : "none")}";
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            rules = now;
            var stats = rig.Commit(staged);
            Assert.Equal(kept != null ? 1 : 0, stats.Edited);
            AssertSameAsFullCompile(rig);
        }
        var seen = string.Join("\n", outcomes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"));
        // appends that are an edit, and each kind of append that is not, both occur
        foreach (var o in new[] { "append: edit", "append: none", "append repeated value: none", "append other key: none", "append jump: none",
                     "append ends chain: none", "append accept: none", "insert: edit", "delete: edit" })
            Assert.True(outcomes.ContainsKey(o), $"{o} never occurred:\n{seen}");
        Assert.True(outcomes["append: edit"] > 20, seen);
    }

    static int? RuleGroupingValue(Rule r) =>
        r.Matchers.Count == 1 && r.Matchers[0].Operator is Compare { Value: var v } && r.Matchers[0].Key == (MatchKey)Fields.Udp.Dport ? (int)v.ToUInt64() : null;

    /// <summary>What a full compile of the committed ruleset with the running counter layout gives is what runs.</summary>
    static void AssertSameAsFullCompile(EditRig rig)
    {
        var running = rig.Program;
        var full = ProgramCompiler.Compile(rig.Current, rig.Current.BaseChains, counters: CounterLayout.Of(running.Compiled));
        Assert.Equal(full.Disassembly, running.Compiled.Disassembly);
        Assert.Equal(full.CounterSlots.OrderBy(kv => kv.Key), running.Compiled.CounterSlots.OrderBy(kv => kv.Key));
        Assert.Equal(full.CounterSlotsUsed, running.Compiled.CounterSlotsUsed);
        foreach (var spec in full.Maps.Where(m => m.Name.StartsWith("set:", StringComparison.Ordinal)))
            Assert.Equal(spec.Entries.Select(EditRig.Hex).Order(), rig.Program.Entries(spec.Name)!.Select(kv => EditRig.Hex((kv.Key, kv.Value))).Order());
    }
}
