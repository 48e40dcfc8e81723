using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Ir;

/// <summary>
/// Each chain's scan kept from one prepare to the next (<see cref="ChainFolds{T}"/> of <see cref="ChainScan"/>) gives
/// what a walk of every rule gives: every attach unit's <see cref="UnitSource"/> and the enforcer's quota and limit
/// statements in order, over random appends, inserts, deletes and replaces in a ruleset whose chains refer to sets,
/// verdict maps (whose elements jump), object maps (with quota and limit objects), regular chains and each other;
/// a chain that only grew is folded over its new rules alone.
/// </summary>
public sealed class ChainScanTests
{
    static readonly string[] Base = ["t/in1", "t/in2", "t/in3"];
    static readonly string[] Regular = ["t/r1", "t/r2", "t/r3"];
    static readonly string[] Sets = ["t/s1", "t/s2", "t/vm", "t/om"];
    static readonly NetfilterHook Input = new(NfFamily.Inet, NfHookPoint.Input, 0);

    sealed class Model
    {
        public readonly Dictionary<string, List<Rule>> Rules = [];
        public ulong Next = 1;
    }

    static Rule NewRule(Model m, Random rng, string chain)
    {
        var id = m.Next++;
        var matchers = new List<Matcher> { Matcher.Eq(Fields.Udp.Dport, U16((ulong)rng.Next(65536))) };
        var statements = new List<Statement> { new CounterStatement(id) };
        Verdict verdict = Verdict.Drop;
        var target = Regular[rng.Next(Regular.Length)];
        // a regular chain refers only to those after it: no loops
        var canJump = !Regular.Contains(chain) || Array.IndexOf(Regular, chain) < Array.IndexOf(Regular, target);
        switch (rng.Next(11))
        {
            case 0: matchers.Add(Matcher.InSet(Fields.Ip.Saddr, Sets[rng.Next(2)])); break;
            case 1: statements.Add(new QuotaStatement(1000, false, (ulong)rng.Next(4))); break;
            case 2: statements.Add(new LimitStatement((ulong)rng.Next(1, 3), TimeSpan.FromSeconds(1), 5) { StateSlot = (ulong)rng.Next(4) }); break;
            case 3:
                statements.Add(new ObjectMapStatement(Fields.Ip.Saddr, "t/om", ValueList.Of<Statement>(
                    new QuotaStatement(500, false, (ulong)rng.Next(4)), new LimitStatement(3, TimeSpan.FromSeconds(1), 0) { StateSlot = (ulong)rng.Next(4) })));
                break;
            case 4 when canJump: verdict = Verdict.Jump(target); break;
            case 5 when canJump: verdict = Verdict.Goto(target); break;
            case 6 when !Regular.Contains(chain): verdict = Verdict.VMap(Fields.Ip.Saddr, "t/vm"); break;
            case 7: matchers.Add(Matcher.InSet(Fields.Ip.Saddr, "t/missing")); break;
        }
        return new Rule(matchers.ToValueList(), statements.ToValueList(), verdict);
    }

    static Ruleset Rules(Model m)
    {
        var vmElement = new SetElement(ValueList.Of<KeyPart>(new KeyPart.Exact(V4("10.0.0.1"))), Verdict.Jump("t/r3"));
        var quotaElement = new SetElement(ValueList.Of<KeyPart>(new KeyPart.Exact(V4("10.0.0.2"))), Statements: ValueList.Of<Statement>(new QuotaStatement(9, false, 2)));
        return new Ruleset(
            Base.Select((b, i) => new BaseChain(b, Input with { Priority = i == 2 ? 0 : i * 10 }, i == 2 ? 0 : i * 10, Verdict.Accept, m.Rules[b].ToValueList())).ToValueList(),
            Regular.Select(r => new Chain(r, m.Rules[r].ToValueList())).ToValueList(),
            ValueList.Of(
                new Set("t/s1", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(quotaElement)),
                new Set("t/s2", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty),
                new Set("t/vm", Fields.Ip.Saddr, SetData.VerdictData, ValueList.Of(vmElement)),
                new Set("t/om", Fields.Ip.Saddr, SetData.ObjectData, ValueList<SetElement>.Empty)));
    }

    static string Describe(UnitSource s) =>
        $"{string.Join(",", s.Chains.Select(c => c.Name))} | {string.Join(",", s.Reached.Select(c => c.Name))} | {string.Join(",", s.Sets.Select(x => x.Name))}";

    [Fact]
    public void KeptScansGiveWhatAWalkOfEveryRuleGives()
    {
        var rng = new Random(12);
        var m = new Model();
        foreach (var c in Base.Concat(Regular))
        {
            m.Rules[c] = [];
            for (var i = 0; i < 5; i++) m.Rules[c].Add(NewRule(m, rng, c));
        }
        var scans = new ChainFolds<ChainScan>();
        int appendsAlone = 0;
        var seen = new HashSet<string>();
        for (var step = 0; step < 500; step++)
        {
            var chain = Base.Concat(Regular).ElementAt(rng.Next(6));
            var rules = m.Rules[chain];
            var append = false;
            switch (rng.Next(6))
            {
                case 0 or 1 or 2: rules.Add(NewRule(m, rng, chain)); append = true; break;
                case 3: rules.Insert(rng.Next(rules.Count + 1), NewRule(m, rng, chain)); break;
                case 4 when rules.Count > 0: rules.RemoveAt(rng.Next(rules.Count)); break;
                case 5 when rules.Count > 0: rules[rng.Next(rules.Count)] = NewRule(m, rng, chain); break;
            }
            var ruleset = Rules(m);
            int folded = scans.RulesFolded, chainsFolded = scans.ChainsFolded;
            scans.Retain(ruleset);
            Assert.Equal(StatefulText<QuotaStatement>(ruleset, null), StatefulText<QuotaStatement>(ruleset, scans));
            Assert.Equal(StatefulText<LimitStatement>(ruleset, null), StatefulText<LimitStatement>(ruleset, scans));
            // the same statement objects in the same order
            Assert.True(Enforcer.StatefulStatements<QuotaStatement>(ruleset, null).SequenceEqual(Enforcer.StatefulStatements<QuotaStatement>(ruleset, scans), ReferenceEqualityComparer.Instance));
            Assert.True(Enforcer.StatefulStatements<LimitStatement>(ruleset, null).SequenceEqual(Enforcer.StatefulStatements<LimitStatement>(ruleset, scans), ReferenceEqualityComparer.Instance));
            if (append && scans.ChainsFolded == chainsFolded)
            {
                Assert.Equal(folded + 1, scans.RulesFolded);
                appendsAlone++;
            }
            foreach (var unit in AttachUnit.Group(ruleset))
            {
                var walked = UnitSource.Of(ruleset, unit.Chains);
                var kept = UnitSource.Of(ruleset, unit.Chains, scans);
                Assert.Equal(Describe(walked), Describe(kept));
                Assert.Equal(walked, kept);
                seen.Add(Describe(kept));
            }
        }
        Assert.True(appendsAlone > 100, $"{appendsAlone} appends folded alone");
        // the sources vary: regular chains reached through jumps, gotos and the verdict map's element, sets through each kind of reference
        Assert.True(seen.Count > 5, string.Join("\n", seen));
        Assert.Contains(seen, s => s.Contains("t/r3") && s.Contains("t/vm") && s.Contains("t/om") && s.Contains("t/s1"));
    }

    static string StatefulText<T>(Ruleset r, ChainFolds<ChainScan>? scans) where T : Statement =>
        string.Join(";", Enforcer.StatefulStatements<T>(r, scans));

    [Fact]
    public void AChainThatGrewIsFoldedOverItsNewRulesAlone()
    {
        var rng = new Random(3);
        var m = new Model();
        foreach (var c in Base.Concat(Regular)) m.Rules[c] = [];
        for (var i = 0; i < 1000; i++) m.Rules["t/in1"].Add(NewRule(m, rng, "t/in1"));
        var scans = new ChainFolds<ChainScan>();
        var unit = AttachUnit.Group(Rules(m)).First();
        UnitSource.Of(Rules(m), unit.Chains, scans);
        var (rules, chains) = (scans.RulesFolded, scans.ChainsFolded);
        m.Rules["t/in1"].Add(NewRule(m, rng, "t/in1"));
        var ruleset = Rules(m);
        unit = AttachUnit.Group(ruleset).First();
        Assert.Equal(UnitSource.Of(ruleset, unit.Chains), UnitSource.Of(ruleset, unit.Chains, scans));
        Assert.Equal(rules + 1, scans.RulesFolded);
        Assert.Equal(chains, scans.ChainsFolded);
        // a replaced rule folds the chain again
        m.Rules["t/in1"][500] = NewRule(m, rng, "t/in1");
        ruleset = Rules(m);
        unit = AttachUnit.Group(ruleset).First();
        Assert.Equal(UnitSource.Of(ruleset, unit.Chains), UnitSource.Of(ruleset, unit.Chains, scans));
        Assert.Equal(chains + 1, scans.ChainsFolded);
    }
}
