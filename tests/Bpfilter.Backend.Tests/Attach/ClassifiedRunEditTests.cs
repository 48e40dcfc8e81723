using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Bpfilter.Testing;
using static Bpfilter.Backend.Tests.Codegen.Harness;
using static Bpfilter.Backend.Tests.Lowering.ClassificationTests;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// Issue 12: a rule added to, inserted into or deleted from a classified run (heterogeneous 5-tuple rules, one
/// bit-vector classifier) within the classifier's capacity keeps the program: the recompiled code is the same (it
/// does not depend on the rules' constants or count within a granule of words), and the classifier maps are
/// double-buffered, so the edit is map updates switched with the generation. What runs is what a full compile of
/// the new ruleset gives, verdict for verdict against the rules run linearly; counters keep their counts. An edit
/// past the capacity or with a verdict the classifier lacks loads a new program.
/// </summary>
[Collection("attach")]
public class ClassifiedRunEditTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);
    static readonly Chain Gone = new("t/gone", ValueList.Of(Counted(8, Verdict.Drop, Matcher.Eq(Fields.L4Proto, U8(17)))));

    static Ruleset Rules(IEnumerable<Generated> rules, params Rule[] extra) =>
        new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.Select(g => g.Rule).Concat(extra).ToValueList())), ValueList.Of(Gone),
            ValueList<Backend.Ir.Set>.Empty);

    sealed class Rig : EditRig
    {
        // the classifier edits themselves: not the chain tail an append would take first
        public Rig() : base(Rules([])) => Enforcer.ChainTails = false;

        /// <summary>
        /// The running program's code is what a compile of the current ruleset without any hint gives (so a restart
        /// compiles the same code), and its classifier maps hold what a compile with its class ids gives.
        /// </summary>
        public void AssertSameAsFullCompile()
        {
            var running = Program;
            var counters = CounterLayout.Of(running.Compiled);
            Assert.Equal(ProgramCompiler.Compile(Current, Current.BaseChains, counters: counters).Disassembly, running.Compiled.Disassembly);
            var full = ProgramCompiler.Compile(Current, Current.BaseChains, counters: counters, classIds: ClassIdHint.Of(running));
            Assert.Equal(full.Disassembly, running.Compiled.Disassembly);
            var tables = full.Maps.Where(m => IsTable(m.Name)).ToList();
            Assert.NotEmpty(tables);
            foreach (var spec in tables)
            {
                var live = running.Entries(spec.Name);
                Assert.NotNull(live);
                Assert.Equal(spec.Entries.Select(Hex).Order(), live.Select(kv => Hex((kv.Key, kv.Value))).Order());
            }
        }

        /// <summary>Every packet gets the verdict the current rules give run one by one (no classification).</summary>
        public void AssertAgreesWithLinear(IReadOnlyList<byte[]> packets)
        {
            using var linear = LoadedProgram.Load(ProgramCompiler.Compile(Current, Current.BaseChains, lowering: LoweringPipeline.None));
            var dropped = 0;
            foreach (var p in packets)
            {
                var expected = linear.Run(p);
                Assert.Equal(expected, Run(p));
                if (expected == XdpDrop) dropped++;
            }
            Assert.InRange(dropped, 1, packets.Count - 1); // both verdicts are exercised
        }

    }

    const uint XdpDrop = 1;

    /// <summary>The classifier tables' maps (cls:f*, cls:v*, cls:rules).</summary>
    static bool IsTable(string map) => map.StartsWith("cls:", StringComparison.Ordinal);

    static List<Generated> Generate(Random random, int count, int firstId) =>
        Enumerable.Range(0, count).Select(i => RandomRule(random, (ulong)(firstId + i), negations: false)).ToList();

    static List<byte[]> PacketsNear(Random random, IEnumerable<Generated> rules) =>
        rules.SelectMany(g => Enumerable.Range(0, 3).Select(_ => PacketNear(random, g))).ToList();

    [Fact]
    public void RulesAppendedInsertedAndDeletedInAClassifiedRunAreMapUpdatesAsAFullCompileGives()
    {
        var random = new Random(1212);
        using var rig = new Rig();
        var rules = Generate(random, 80, 100);
        Assert.Equal(1, rig.Commit(Rules(rules)).Loaded);
        Assert.Contains("clsword", rig.Program.Compiled.Disassembly);
        var id = rig.ProgramId;
        var packets = PacketsNear(random, rules);
        rig.AssertAgreesWithLinear(packets);
        var counted = rig.Current.BaseChains[0].Rules.SelectMany(r => r.CounterIds).ToDictionary(c => c, c => rig.Enforcer.Counter(c).Packets);
        Assert.Contains(counted.Values, n => n > 0);

        // appended (nft add rule), inserted in the middle (nft insert / add ... position), deleted
        var added = Generate(random, 3, 1000);
        List<List<Generated>> edits = [[.. rules, added[0]], [.. rules[..40], added[1], .. rules[40..], added[0]], [.. rules[..40], .. rules[41..], added[0]]];
        foreach (var next in edits)
        {
            var stats = rig.Commit(Rules(next));
            Assert.Equal((0, 1), (stats.Loaded, stats.Kept));
            Assert.InRange(stats.MapUpdates, 1, int.MaxValue);
            Assert.Equal(id, rig.ProgramId);
            rig.AssertSameAsFullCompile();
            // counters of rules that stay kept their counts (the packets below add to them)
            foreach (var c in next.SelectMany(g => g.Rule.CounterIds).Where(counted.ContainsKey))
                Assert.True(rig.Enforcer.Counter(c).Packets >= counted[c], $"counter {c} lost its count");
            rig.AssertAgreesWithLinear([.. packets, .. PacketsNear(random, added)]);
            counted = next.SelectMany(g => g.Rule.CounterIds).ToDictionary(c => c, c => rig.Enforcer.Counter(c).Packets);
        }
    }

    [Fact]
    public void AnAbortedClassifiedEditLeavesTheProgramAndItsTablesAsTheyWere()
    {
        var random = new Random(1213);
        using var rig = new Rig();
        var rules = Generate(random, 60, 100);
        rig.Commit(Rules(rules));
        var id = rig.ProgramId;
        var before = rig.Program.Compiled.Maps.Where(m => IsTable(m.Name))
            .ToDictionary(m => m.Name, m => rig.Program.Entries(m.Name)!.ToDictionary(kv => Convert.ToHexString(kv.Key), kv => Convert.ToHexString(kv.Value)));
        var extra = Generate(random, 1, 1000);
        var stats = rig.Stage(Rules([extra[0], .. rules]));
        Assert.Equal((0, 1), (stats.Loaded, stats.Kept));
        rig.Enforcer.Abort();
        Assert.Equal(id, rig.ProgramId);
        foreach (var (name, entries) in before.Select(kv => (kv.Key, kv.Value)))
            Assert.Equal(entries.OrderBy(kv => kv.Key), rig.Program.Entries(name)!.ToDictionary(kv => Convert.ToHexString(kv.Key), kv => Convert.ToHexString(kv.Value)).OrderBy(kv => kv.Key));
        rig.AssertSameAsFullCompile();
        rig.AssertAgreesWithLinear(PacketsNear(random, [.. rules, .. extra]));
    }

    [Fact]
    public void AnEditPastTheCapacityOrWithANewVerdictLoadsAProgram()
    {
        var random = new Random(1214);
        using var rig = new Rig();
        // one granule of words (ClassifierLayout.WordGranule): 1,024 rules
        var rules = Generate(random, 1024, 100);
        rig.Commit(Rules(rules));
        var id = rig.ProgramId;
        var extra = Generate(random, 1, 5000);
        var stats = rig.Commit(Rules([.. rules, .. extra]));
        Assert.Equal(1, stats.Loaded);
        Assert.NotEqual(id, rig.ProgramId);
        var packets = PacketsNear(random, [.. rules.Take(100), .. extra]);
        rig.AssertAgreesWithLinear(packets);

        // back within the granule, then a verdict no classified rule had (return)
        rig.Commit(Rules(rules));
        id = rig.ProgramId;
        var returning = rules[10].Rule with { Verdict = Verdict.Return };
        Assert.Equal(1, rig.Commit(Rules(rules[..10], [returning, .. rules[11..].Select(g => g.Rule)])).Loaded);
        Assert.NotEqual(id, rig.ProgramId);
        rig.AssertAgreesWithLinear(packets);
    }
}
