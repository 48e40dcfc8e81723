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
/// Issue 12: a rule appended to a base chain ending in a classified run is worked out from the change alone
/// (ClassifiedRunEdit): the classes it splits, the vectors gaining its bit, its rule entry and counter slot, without
/// lowering or compiling. Over many random appends (address fields split into halves, or kept whole as LPM tries when
/// rules negate them) the running program's code, counter slots, classifier maps (each entry, in order, and their
/// sizes), recorded classifiers and map contents are exactly what a full compile with its class ids gives, and packets
/// get the verdicts of the rules run one by one.
/// </summary>
[Collection("attach")]
public class ClassifiedRunAppendTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);
    static readonly Chain Gone = new("t/gone", ValueList.Of(Counted(8, Verdict.Drop, Matcher.Eq(Fields.L4Proto, U8(17)))));

    static Ruleset Rules(IEnumerable<Generated> rules, params Rule[] extra) =>
        new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.Select(g => g.Rule).Concat(extra).ToValueList())), ValueList.Of(Gone),
            ValueList<Backend.Ir.Set>.Empty);

    static List<Generated> Generate(Random random, int count, int firstId, bool negations) =>
        Enumerable.Range(0, count).Select(i => RandomRule(random, (ulong)(firstId + i), negations)).ToList();

    static List<byte[]> PacketsNear(Random random, IEnumerable<Generated> rules) =>
        rules.SelectMany(g => Enumerable.Range(0, 2).Select(_ => PacketNear(random, g))).ToList();

    /// <summary>
    /// Appends <paramref name="added"/> to <paramref name="rules"/> (and packets near it to <paramref name="packets"/>) and
    /// commits: an edit in place keeps the program's id, and either way the result is what a full compile gives.
    /// </summary>
    static PrepareStats Append(Rig rig, List<Generated> rules, List<byte[]> packets, Random random, Generated added)
    {
        rules.Add(added);
        packets.AddRange(PacketsNear(random, [added]));
        var id = rig.ProgramId;
        var stats = rig.Commit(Rules(rules));
        if (stats.Edited == 1) Assert.Equal(id, rig.ProgramId);
        rig.AssertSameAsFullCompile();
        return stats;
    }

    sealed class Rig : EditRig
    {
        // the classifier edits themselves: not the chain tail an append would take first
        public Rig() : base(Rules([])) => Enforcer.ChainTails = false;

        /// <summary>What runs and what is recorded is what a full compile of the current ruleset with the running counter layout and class ids gives.</summary>
        public void AssertSameAsFullCompile()
        {
            var running = Program;
            var counters = CounterLayout.Of(running.Compiled);
            // the class ids of the running maps, and no layout of the running program's (laid out by the sweep)
            var full = ProgramCompiler.Compile(Current, Current.BaseChains, counters: counters, classIds: new ClassIdHint(running.Entries));
            Assert.Equal(full.Disassembly, running.Compiled.Disassembly);
            Assert.Equal(ProgramCompiler.Compile(Current, Current.BaseChains, counters: counters).Disassembly, running.Compiled.Disassembly);
            Assert.Equal(full.CounterSlots.OrderBy(kv => kv.Key), running.Compiled.CounterSlots.OrderBy(kv => kv.Key));
            Assert.Equal(full.CounterSlotsUsed, running.Compiled.CounterSlotsUsed);
            Assert.Equal(full.Maps.Select(m => m.Name), running.Compiled.Maps.Select(m => m.Name));
            foreach (var (spec, had) in full.Maps.Zip(running.Compiled.Maps).Where(p => ClassifierTables.IsClassifierMap(p.First.Name)))
            {
                Assert.Equal((spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, spec.DoubleBuffered),
                    (had.Type, had.KeySize, had.ValueSize, had.MaxEntries, had.DoubleBuffered));
                var (want, got) = (spec.Entries.Select(Hex).ToList(), had.Entries.Select(Hex).ToList());
                var at = Enumerable.Range(0, Math.Min(want.Count, got.Count)).FirstOrDefault(i => want[i] != got[i], Math.Min(want.Count, got.Count));
                Assert.True(want.Count == got.Count && at == want.Count,
                    $"{spec.Name}: {want.Count} entries compiled, {got.Count} recorded; first difference at {at}: {want.ElementAtOrDefault(at)} / {got.ElementAtOrDefault(at)}"); // in order, as compiled
                var live = running.Entries(spec.Name);
                Assert.NotNull(live);
                Assert.Equal(spec.Entries.Select(Hex).Order(), live.Select(kv => Hex((kv.Key, kv.Value))).Order());
                // and both copies in the kernel hold it (the edit's upserts are written as one batch per map and copy); not
                // the class arrays (65,536 entries per slot, read back key by key: too slow here), which the verdicts check
                if (spec.Type == global::Bpfilter.Backend.Libbpf.BpfMapType.Array && spec.Name.StartsWith("cls:f", StringComparison.Ordinal)) continue;
                for (var copy = 0; copy < 2; copy++)
                    Assert.Equal(Held(spec, spec.Entries), Held(spec, Kernel(running.Copy(spec.Name, copy)!)));
            }
            Assert.Equal(full.Classifiers.Count, running.Compiled.Classifiers.Count);
            foreach (var (a, b) in full.Classifiers.Zip(running.Compiled.Classifiers))
            {
                Assert.Equal((a.Chain, a.Classifier, a.Words, a.EndsChain, a.AfterClassifier, a.At.RuleBase), (b.Chain, b.Classifier, b.Words, b.EndsChain, b.AfterClassifier, b.At.RuleBase));
                Assert.Equal(a.At.Dimensions, b.At.Dimensions);
                Assert.Equal(a.VerdictCodes, b.VerdictCodes);
            }
        }

        /// <summary>A map's entries as the kernel holds them: an array's zero values are no entries (it is filled with zeros).</summary>
        static List<string> Held(MapSpec spec, IEnumerable<(byte[] Key, byte[] Value)> entries) =>
            entries.Where(e => spec.Type != global::Bpfilter.Backend.Libbpf.BpfMapType.Array || e.Value.AsSpan().ContainsAnyExcept((byte)0)).Select(Hex).Order().ToList();

        static List<(byte[] Key, byte[] Value)> Kernel(global::Bpfilter.Backend.Libbpf.BpfMap map)
        {
            var result = new List<(byte[], byte[])>();
            foreach (var k in map.Keys())
            {
                var v = new byte[map.ValueSize];
                Assert.True(map.TryLookup(k, v));
                result.Add((k, v));
            }
            return result;
        }

        /// <summary>Every packet gets the verdict the current rules give run one by one (no classification).</summary>
        public void AssertAgreesWithLinear(IReadOnlyList<byte[]> packets)
        {
            using var linear = LoadedProgram.Load(ProgramCompiler.Compile(Current, Current.BaseChains, lowering: LoweringPipeline.None));
            foreach (var p in packets) Assert.Equal(linear.Run(p), Run(p));
        }
    }

    [Theory]
    [InlineData(1301, false)] // address fields split into 16-bit halves: class arrays
    [InlineData(1302, true)] // negated prefixes keep address fields whole: LPM tries
    [InlineData(1303, true)]
    public void RandomAppendsAreWorkedOutAsAFullCompileGives(int seed, bool negations)
    {
        var random = new Random(seed);
        using var rig = new Rig();
        var rules = Generate(random, 48, 100, negations);
        rig.Commit(Rules(rules));
        Assert.Contains("clsword", rig.Program.Compiled.Disassembly);
        var packets = PacketsNear(random, rules);
        var edited = 0;
        for (var k = 0; k < 40; k++)
        {
            var stats = Append(rig, rules, packets, random, Generate(random, 1, 1000 + k, negations)[0]);
            if (stats.Edited == 1)
            {
                edited++;
                Assert.Equal((0, 1), (stats.Loaded, stats.Kept));
            }
            if (k % 8 == 7) rig.AssertAgreesWithLinear(packets);
        }
        Assert.InRange(edited, 25, 40); // the rest: a field the run did not read, a selectivity order changed
        rig.AssertAgreesWithLinear(packets);
        var counted = rules.Select(g => rig.Enforcer.Counter(g.Rule.CounterId!.Value).Packets).ToList();
        Assert.Contains(counted.Skip(48), n => n > 0); // appended rules count

        // deleted again (a full compile diffed against the edited tables), then appended to again
        rules.RemoveAt(60);
        rig.Commit(Rules(rules));
        rig.AssertSameAsFullCompile();
        rules.Add(Generate(random, 1, 2000, negations)[0]);
        rig.Commit(Rules(rules));
        rig.AssertSameAsFullCompile();
        rig.AssertAgreesWithLinear(packets);
    }

    [Fact]
    public void AnAppendedRuleOfTheBenchShapeIsAnEditAndCountsItsPackets()
    {
        var random = new Random(1304);
        using var rig = new Rig();
        var rules = Generate(random, 203, 100, negations: false);
        rig.Commit(Rules(rules));
        var id = rig.ProgramId;
        // bench/suite.py's `ip saddr 10.254.0.K udp dport 7 counter drop`: edits until they make a run RuleGrouping groups
        // (an append that moves a field across an eighth of rules without a matcher reorders the code: compiled)
        var extra = new List<Rule>();
        var edited = 0;
        for (var k = 1; k <= RuleGrouping.DefaultMinRun; k++)
        {
            extra.Add(Counted((ulong)(5000 + k), Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4($"10.254.0.{k}")), Matcher.Eq(Fields.Udp.Dport, U16(7))));
            var stats = rig.Commit(Rules(rules, [.. extra]));
            if (k == RuleGrouping.DefaultMinRun) Assert.Equal(0, stats.Edited);
            else if (stats.Edited == 1)
            {
                edited++;
                Assert.Equal(id, rig.ProgramId);
            }
            id = rig.ProgramId;
            rig.AssertSameAsFullCompile();
        }
        Assert.InRange(edited, 10, RuleGrouping.DefaultMinRun - 1);
        var packet = PacketBuilder.Ether().Ipv4("10.254.0.3", "198.18.0.2").Udp(1234, 7).Build();
        var linear = LoadedProgram.Load(ProgramCompiler.Compile(rig.Current, rig.Current.BaseChains, lowering: LoweringPipeline.None));
        using (linear) Assert.Equal(linear.Run(packet), rig.Run(packet));
    }

    /// <summary>
    /// Issue 12's stall: the bench's appends of one key after a classified run whose last rule has that key are edits until
    /// the sixteenth makes a grouped run of them (RuleGrouping.DefaultMinRun), which compiles the chain. Its classifier is
    /// then the running one's first rules: their classes are taken from the running program's layout, cut to them, not laid
    /// out again; the program is still what a full compile laid out by the sweep gives, further appends join the grouped
    /// run, and packets get the verdicts and counts of the rules run one by one. Past 1,024 rules (folded words).
    /// </summary>
    [Fact]
    public void AGroupedRunAppendedAfterAClassifiedRunTakesTheClassifiersLayout()
    {
        var random = new Random(1308);
        using var rig = new Rig();
        var rules = Generate(random, 1200, 100, negations: false);
        var benchPackets = Enumerable.Range(0, RuleGrouping.DefaultMinRun + 4).Select(k => PacketBuilder.Ether().Ipv4($"10.254.0.{k}", "198.18.0.2").Udp(1234, 7).Build()).ToList();
        // none of the random rules takes the bench's packets, so the appended rules count them (a linear program's counts
        // say which rule does: taken out, until none)
        for (var caught = true; caught;)
        {
            using var oneByOne = LoadedProgram.Load(ProgramCompiler.Compile(Rules(rules), Rules(rules).BaseChains, lowering: LoweringPipeline.None));
            foreach (var p in benchPackets) oneByOne.Run(p);
            var count = rules.Count;
            rules = rules.Where(g => oneByOne.Counter(g.Rule.CounterId!.Value).Packets == 0).ToList();
            caught = rules.Count < count;
        }
        rules = rules.Take(1100).ToList();
        Assert.Equal(1100, rules.Count);
        Rule Bench(int k) => Counted((ulong)(6000 + k), Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4($"10.254.0.{k}")), Matcher.Eq(Fields.Udp.Dport, U16(7)));
        var extra = new List<Rule> { Bench(0) }; // the bench ruleset's last rule has the appends' key
        rig.Commit(Rules(rules, [.. extra]));
        Assert.False(rig.Program.Compiled.ClassifierLayouts[0].TakenFromEarlier);
        var stall = RuleGrouping.DefaultMinRun - 1; // the append making sixteen rules of the key
        var edited = 0;
        for (var k = 1; k <= stall + 4; k++)
        {
            extra.Add(Bench(k));
            var id = rig.ProgramId;
            var stats = rig.Commit(Rules(rules, [.. extra]));
            if (stats.Edited == 1)
            {
                edited++;
                Assert.Equal(id, rig.ProgramId);
            }
            rig.AssertSameAsFullCompile();
            if (k == stall - 1) Assert.Equal(1100 + stall, rig.Program.Compiled.Classifiers[0].Classifier.Rules.Count);
            if (k == stall)
            {
                Assert.Equal((0, 1), (stats.Edited, stats.Loaded));
                var layout = Assert.Single(rig.Program.Compiled.ClassifierLayouts);
                Assert.True(layout.TakenFromEarlier);
                Assert.Equal(1100, layout.Classifier.Rules.Count); // the grouped run took the sixteen
            }
            if (k > stall) Assert.Equal(1, stats.Edited); // joins the grouped run
        }
        Assert.InRange(edited, 12, stall + 3);
        var packets = PacketsNear(random, rules.Skip(1000));
        packets.AddRange(PacketsNear(random, rules.Take(40)));
        packets.AddRange(benchPackets);
        using var linear = LoadedProgram.Load(ProgramCompiler.Compile(rig.Current, rig.Current.BaseChains, lowering: LoweringPipeline.None));
        foreach (var p in packets) Assert.Equal(linear.Run(p), rig.Run(p));
        foreach (var r in rules.Select(g => g.Rule).Concat(extra))
            Assert.Equal(linear.Counter(r.CounterId!.Value).Packets, rig.Enforcer.Counter(r.CounterId!.Value).Packets);
        Assert.All(extra, r => Assert.Equal(1UL, rig.Enforcer.Counter(r.CounterId!.Value).Packets)); // the grouped run, and the rules that joined it
    }

    /// <summary>
    /// Past 1,024 rules the first granule's rules without a matcher on a field are folded into every class's vector
    /// (<see cref="ClassifierLayout.Folded"/>) and the program ORs the match-anything vector into the last granule's words
    /// alone: appends there, with and without matchers on each field, are edits (the program kept) that give what a full
    /// compile gives and the verdicts of the rules run one by one, for packets near the rules and lacking the fields.
    /// </summary>
    [Fact]
    public void AppendsPastTheFoldedWordsAreEditsAsAFullCompileGives()
    {
        var random = new Random(1306);
        using var rig = new Rig();
        var rules = Generate(random, 1100, 100, negations: false);
        rig.Commit(Rules(rules));
        Assert.Equal((32, 16), (rig.Program.Compiled.Classifiers[0].Words, ClassifierLayout.Folded(rig.Program.Compiled.Classifiers[0].Words)));
        ClassifierAnyVectorTests.AssertWildcardsInTheAnyVectorAlone(rig.Program);
        var packets = PacketsNear(random, rules.Skip(1000));
        packets.AddRange(PacketsNear(random, rules.Take(40)));
        var edited = 0;
        for (var k = 0; k < 12; k++)
        {
            // every third the bench's shape: no matcher on the destination address, the source port nor (when split) their halves
            var added = k % 3 == 0
                ? new Generated(Counted((ulong)(3000 + k), Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4($"10.254.0.{k}")), Matcher.Eq(Fields.Udp.Dport, U16(7))),
                    (0x0afe0000u + (uint)k, 0x0afe0000u + (uint)k), null, 17, null, (7, 7))
                : Generate(random, 1, 3000 + k, negations: false)[0];
            if (Append(rig, rules, packets, random, added).Edited == 1) edited++;
            ClassifierAnyVectorTests.AssertWildcardsInTheAnyVectorAlone(rig.Program);
        }
        Assert.InRange(edited, 8, 12);
        rig.AssertAgreesWithLinear([.. packets, .. ClassifierAnyVectorTests.Lacking]);
    }

    /// <summary>
    /// Port ranges around values earlier rules name (53, 80, 443): the values no rule named until then get entries of
    /// their own merged by value between the array's compiled entries, whose named values' entries are rewritten where
    /// their class splits; each append keeps the program and gives what a full compile gives.
    /// </summary>
    [Fact]
    public void RangesAppendedAroundNamedPortsMergeNewEntriesByValue()
    {
        var random = new Random(1307);
        using var rig = new Rig();
        var rules = Generate(random, 203, 100, negations: false);
        rig.Commit(Rules(rules));
        var packets = PacketsNear(random, rules.Take(60));
        var edited = 0;
        (int, int)[] ranges = [(50, 60), (52, 53), (70, 90), (440, 450), (1, 100), (79, 81)];
        for (var k = 0; k < ranges.Length; k++)
        {
            var (lo, hi) = ranges[k];
            var added = new Generated(Counted((ulong)(4000 + k), k % 2 == 0 ? Verdict.Drop : Verdict.Accept,
                Matcher.Prefix(Fields.Ip.Saddr, V4($"10.1.{k}.0"), 24), Matcher.Range(Fields.Udp.Dport, U16((ulong)lo), U16((ulong)hi))),
                (0x0a010000u + (uint)k * 256, 0x0a010000u + (uint)k * 256 + 255), null, 17, null, (lo, hi));
            if (Append(rig, rules, packets, random, added).Edited == 1) edited++;
        }
        Assert.InRange(edited, 3, ranges.Length);
        rig.AssertAgreesWithLinear(packets);
    }

    [Fact]
    public void AppendsTheClassifierCannotTakeAsAnEditCompileAsBefore()
    {
        var random = new Random(1305);
        using var rig = new Rig();
        var rules = Generate(random, 48, 100, negations: false);
        rig.Commit(Rules(rules));
        // a range across /16 boundaries cannot be split into halves: the address field is read whole, the code changes
        var wide = Counted(7001, Verdict.Drop, Matcher.Range(Fields.Ip.Saddr, V4("10.0.255.0"), V4("10.1.0.255")));
        var stats = rig.Commit(Rules(rules, wide));
        Assert.Equal(0, stats.Edited);
        rig.AssertSameAsFullCompile();
        // a verdict the classifier has no code for (return)
        rig.Commit(Rules(rules));
        stats = rig.Commit(Rules(rules, Counted(7003, Verdict.Return, [.. rules[3].Rule.Matchers])));
        Assert.Equal(0, stats.Edited);
        rig.AssertSameAsFullCompile();
        // a field the run does not read (ip dscp-like raw byte: the ip tos field)
        rig.Commit(Rules(rules));
        stats = rig.Commit(Rules(rules, Counted(7002, Verdict.Drop, Matcher.Eq(new PayloadField(HeaderProtocol.Ip, PayloadBase.Network, 8, 8), U8(4)))));
        Assert.Equal(0, stats.Edited);
        rig.AssertSameAsFullCompile();
        rig.AssertAgreesWithLinear(PacketsNear(random, rules));
    }
}
