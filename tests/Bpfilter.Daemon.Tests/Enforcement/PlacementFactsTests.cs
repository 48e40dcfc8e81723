using Bpfilter.Daemon.Placement;
using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Lifter;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Placement with each chain's facts kept from the previous placement (<see cref="PlacementFacts"/>) gives the plan
/// a walk of every rule gives, over random edits of a table whose base chains share hooks, regular chains, sets,
/// named objects and anonymous quotas (so that chains move to the kernel for every reason a fact gives); a chain
/// that only grew is folded over its new rules alone.
/// </summary>
public sealed class PlacementFactsTests
{
    const byte Ip = NfProto.Ipv4;
    const string T = "t";
    static readonly string[] BaseChains = ["in1", "in2", "in3"];
    static readonly string[] Regular = ["r1", "r2"];

    sealed class Model
    {
        public readonly Dictionary<string, List<Rule>> Rules = [];
        public ulong NextHandle = 1;
    }

    static Expression[] Body(Random rng, string chain, int? kind = null)
    {
        var list = new List<Expression>
        {
            new PayloadExpr(1, 12, 4, 1),
            new CmpExpr(1, 0, new ValueData([10, 0, (byte)rng.Next(256), (byte)rng.Next(256)])),
        };
        switch (kind ?? rng.Next(10))
        {
            case 0: list.Add(new QuotaExpr(1000)); break;
            case 1: list.Add(new LimitExpr(10, 1)); break;
            case 2: list.Add(new ObjRefExpr((uint)NftObjectType.Counter, rng.Next(2) == 0 ? "c1" : "c2")); break;
            case 3: list.Add(new ObjRefExpr((uint)NftObjectType.Quota, "q1")); break;
            case 4: list.Add(new LookupExpr(rng.Next(2) == 0 ? "s1" : "s2", null, 1)); break;
            case 5: list.Add(new DynsetExpr("s2", null, 0, 1)); break;
            case 6 when kind != null || rng.Next(10) == 0: list.Add(new MetaExpr(MetaExpr.KeyNfTrace, null, 1)); break;
            case 7 when !Regular.Contains(chain): list.Add(new ImmediateExpr(0, new VerdictData(Verdict.JumpTo(Regular[rng.Next(2)])))); return [.. list];
            case 8: list.Add(new ObjRefExpr(null, null, 1, "om")); break;
        }
        list.Add(new CounterExpr(0, 0));
        list.Add(new ImmediateExpr(0, new VerdictData(Verdict.DropVerdict)));
        return [.. list];
    }

    static Rule NewRule(Model m, Random rng, string chain, int? kind = null) =>
        new() { Family = Ip, Table = T, Chain = chain, Handle = m.NextHandle++, Expressions = Body(rng, chain, kind) };

    static SourceTable Table(Model m)
    {
        var chains = new List<SourceChain>();
        for (int i = 0; i < BaseChains.Length; i++)
            chains.Add(new SourceChain(new Chain
            {
                Family = Ip, Table = T, Name = BaseChains[i],
                Hook = new ChainHook(NfHooks.LocalIn, i == 2 ? 0 : i * 10), Policy = 1,
            }, [.. m.Rules[BaseChains[i]]]));
        foreach (var r in Regular) chains.Add(new SourceChain(new Chain { Family = Ip, Table = T, Name = r }, [.. m.Rules[r]]));
        var withCounters = new SetElement { Key = new ValueData([10, 0, 0, 1]), Expr = new CounterExpr(0, 0) };
        var sets = new List<SourceSet>
        {
            new(new Set { Family = Ip, Table = T, Name = "s1", KeyType = 7, KeyLen = 4 }, [withCounters]),
            new(new Set { Family = Ip, Table = T, Name = "s2", KeyType = 7, KeyLen = 4 }, []),
            new(new Set { Family = Ip, Table = T, Name = "om", KeyType = 7, KeyLen = 4, Flags = (uint)NftSetFlags.Object,
                ObjType = (uint)NftObjectType.Counter }, []),
        };
        var objects = new List<NftObject>
        {
            new() { Family = Ip, Table = T, Name = "c1", Type = (uint)NftObjectType.Counter, Data = new CounterExpr(0, 0) },
            new() { Family = Ip, Table = T, Name = "c2", Type = (uint)NftObjectType.Counter, Data = new CounterExpr(0, 0) },
            new() { Family = Ip, Table = T, Name = "q1", Type = (uint)NftObjectType.Quota, Data = new QuotaExpr(5000) },
        };
        return new SourceTable(new Table { Family = Ip, Name = T }, chains, sets, objects);
    }

    static string Describe(PlacementPlan p) => string.Join("\n",
        p.Chains.Select(c => $"{c.Chain} {c.Side} {c.Reason} {c.Refusal?.Message}")
            .Concat(p.BpfChains.Select(c => $"bpf {c}").Order())
            .Concat(p.KernelChains.Select(c => $"kernel {c}").Order())
            .Concat(p.KernelSets.Select(s => $"kernel set {s}").Order())
            .Concat(p.KernelWrittenSets.Select(s => $"written {s}").Order())
            .Concat(p.KernelTables.SelectMany(t => t.Chains.Select(c => $"ktable {t.Name} {c.Name} {string.Join(",", c.Rules.Select(r => r.Handle))}")))
            .Concat(p.KernelTables.SelectMany(t => t.Sets.Select(s => $"ktable set {s.Name}")))
            .Concat(p.KernelTables.SelectMany(t => (t.Objects ?? []).Select(o => $"ktable object {o.Name}")))
            .Append(p.BpfRuleset.ToString()));

    [Fact]
    public void KeptFactsGiveThePlanOfAWalkOfEveryRule()
    {
        var rng = new Random(5);
        // seed 5: every reason below occurs within the 400 steps
        var m = new Model();
        foreach (var c in BaseChains.Concat(Regular)) m.Rules[c] = [];
        foreach (var c in BaseChains.Concat(Regular))
            for (int i = 0; i < 5; i++) m.Rules[c].Add(NewRule(m, rng, c));
        var facts = new PlacementFacts();
        var slots = new CounterSlots();
        int appendsOnly = 0;
        var reasons = new HashSet<string>();
        for (int step = 0; step < 400; step++)
        {
            var chain = BaseChains.Concat(Regular).ElementAt(rng.Next(5));
            var rules = m.Rules[chain];
            int folded = facts.RulesFolded, chainsFolded = facts.ChainsFolded;
            bool append = false;
            switch (rng.Next(6))
            {
                case 0 or 1 or 2: rules.Add(NewRule(m, rng, chain)); append = true; break;
                case 3: rules.Insert(rng.Next(rules.Count + 1), NewRule(m, rng, chain)); break;
                case 4 when rules.Count > 0: rules.RemoveAt(rng.Next(rules.Count)); break;
                case 5 when rules.Count > 0: rules[rng.Next(rules.Count)] = rules[0] with { Handle = m.NextHandle++ }; break;
            }
            var tables = new[] { Table(m) };
            var lift = NftLifter.LiftChains(tables, slots);
            var forced = BaseChains.Where(_ => rng.Next(4) == 0).Select(b => new ChainId(Ip, T, b)).ToHashSet();
            var walked = PlacementPlan.Build(tables, lift, forced);
            var kept = PlacementPlan.Build(tables, lift, forced, facts);
            Assert.Equal(Describe(walked), Describe(kept));
            foreach (var c in kept.Chains) reasons.Add(c.Reason);
            // an append to a chain placement met before folds the new rule alone (none when no base chain reaches it)
            if (append && facts.ChainsFolded == chainsFolded)
            {
                Assert.InRange(facts.RulesFolded - folded, 0, 1);
                if (facts.RulesFolded == folded + 1) appendsOnly++;
            }
        }
        Assert.True(appendsOnly > 50, $"{appendsOnly} appends folded alone");
        // every fact placement reads moved a chain at some step
        foreach (var why in new[] { "shares counter", "shares quota", "reads set s2", "a BPF_NETFILTER link cannot share" })
            Assert.True(reasons.Any(r => r.Contains(why)), $"no chain moved for '{why}':\n{string.Join("\n", reasons)}");
    }

    [Fact]
    public void AChainThatGrewIsFoldedOverItsNewRulesAlone()
    {
        var rng = new Random(9);
        var m = new Model();
        foreach (var c in BaseChains.Concat(Regular)) m.Rules[c] = [];
        for (int i = 0; i < 1000; i++) m.Rules["in1"].Add(NewRule(m, rng, "in1", kind: 9));
        m.Rules["in2"].Add(NewRule(m, rng, "in2", kind: 9));
        var facts = new PlacementFacts();
        var slots = new CounterSlots();
        PlacementPlan Place()
        {
            var tables = new[] { Table(m) };
            var lift = NftLifter.LiftChains(tables, slots);
            var kept = PlacementPlan.Build(tables, lift, new HashSet<ChainId>(), facts);
            Assert.Equal(Describe(PlacementPlan.Build(tables, lift, new HashSet<ChainId>())), Describe(kept));
            return kept;
        }
        Assert.All(Place().Chains, c => Assert.Equal(PlacementSide.Bpf, c.Side));
        Assert.Equal(1001, facts.RulesFolded);
        m.Rules["in1"].Add(NewRule(m, rng, "in1", kind: 9));
        m.Rules["in1"].Add(NewRule(m, rng, "in1", kind: 9));
        Place();
        Assert.Equal(1003, facts.RulesFolded);
        // a rule setting meta nftrace appended to in2 (refused: the kernel runs it) moves in1 to the kernel too
        m.Rules["in2"].Add(NewRule(m, rng, "in2", kind: 6));
        var plan = Place();
        Assert.Equal(1004, facts.RulesFolded);
        Assert.Contains("sets meta nftrace", plan.Chains.Single(c => c.Chain.Chain == "in1").Reason);
        // a rule deleted from the middle: the chain is folded from its start
        m.Rules["in1"].RemoveAt(500);
        Place();
        Assert.Equal(1004 + 1001, facts.RulesFolded);
    }
}
