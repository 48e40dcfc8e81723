using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Lifter.Tests;

/// <summary>
/// A lift with a <see cref="RuleLiftCache"/>, which extends the previous lift by the rules appended to its base chains
/// (<c>PreviousLift</c>), gives what a whole lift without it gives (rules, order, counter, quota and limit slots,
/// listing, refusals) over random appends, inserts, deletes and replaces in an ip table (base chains, regular chains,
/// sets, named objects, anonymous quotas and limits) and a netdev table with a two-device chain, with set, chain and
/// object changes and aborted transactions (slots freed) between them; each side has counter slots of its own, so
/// new counters must take the slots the whole lift hands out in the same order.
/// </summary>
public sealed class PreviousLiftTests
{
    const byte Ip = NfProto.Ipv4;
    static readonly string[] BaseChains = ["in1", "in2", "in3"];
    static readonly string[] Regular = ["r1", "r2"];
    static readonly string[] Chains = [.. BaseChains, .. Regular, "dev"];

    sealed class Model
    {
        public readonly Dictionary<string, List<Rule>> Rules = [];
        public ulong NextHandle = 1;
        public uint Policy = 1;
        public int Elements = 1;
        public ulong Quota = 5000;
    }

    static Expression[] Body(Random rng, string chain, bool plain)
    {
        var list = new List<Expression>();
        if (chain == "dev")
        {
            list.Add(new MetaExpr(MetaExpr.KeyProtocol, 1));
            list.Add(new CmpExpr(1, 0, new ValueData([0x08, 0x00])));
        }
        list.Add(new PayloadExpr(1, 12, 4, 1));
        list.Add(new CmpExpr(1, 0, new ValueData([10, 0, (byte)rng.Next(256), (byte)rng.Next(256)])));
        if (!plain)
            switch (rng.Next(9))
            {
                case 0: list.Add(new QuotaExpr(1000)); break;
                case 1: list.Add(new LimitExpr(10, 1)); break;
                case 2: list.Add(new ObjRefExpr((uint)NftObjectType.Counter, rng.Next(2) == 0 ? "c1" : "c2")); break;
                case 3: list.Add(new ObjRefExpr((uint)NftObjectType.Quota, "q1")); break;
                case 4 when chain != "dev": list.Add(new LookupExpr(rng.Next(2) == 0 ? "s1" : "s2", null, 1)); break;
                case 5 when !Regular.Contains(chain) && chain != "dev":
                    list.Add(new ImmediateExpr(0, new VerdictData(Verdict.JumpTo(Regular[rng.Next(2)]))));
                    return [.. list];
                case 6: list.Add(new ObjRefExpr(null, null, 1, "om")); break;
            }
        if (rng.Next(5) > 0) list.Add(new CounterExpr(0, 0));
        list.Add(new ImmediateExpr(0, new VerdictData(rng.Next(3) == 0 ? Verdict.AcceptVerdict : Verdict.DropVerdict)));
        return [.. list];
    }

    static Rule NewRule(Model m, Random rng, string chain, bool plain) =>
        new() { Family = chain == "dev" ? NfProto.Netdev : Ip, Table = "t", Chain = chain, Handle = m.NextHandle++, Expressions = Body(rng, chain, plain) };

    static IReadOnlyList<SourceTable> Tables(Model m)
    {
        var chains = new List<SourceChain>();
        for (int i = 0; i < BaseChains.Length; i++)
            chains.Add(new SourceChain(new Chain
            {
                Family = Ip, Table = "t", Name = BaseChains[i],
                Hook = new ChainHook(NfHooks.LocalIn, i * 10), Policy = i == 0 ? m.Policy : 1,
            }, [.. m.Rules[BaseChains[i]]]));
        foreach (var r in Regular) chains.Add(new SourceChain(new Chain { Family = Ip, Table = "t", Name = r }, [.. m.Rules[r]]));
        var elements = Enumerable.Range(1, m.Elements).Select(i => new SetElement { Key = new ValueData([10, 0, 0, (byte)i]), Expr = new CounterExpr(0, 0) }).ToList();
        var sets = new List<SourceSet>
        {
            new(new Set { Family = Ip, Table = "t", Name = "s1", KeyType = 7, KeyLen = 4 }, elements),
            new(new Set { Family = Ip, Table = "t", Name = "s2", KeyType = 7, KeyLen = 4 }, []),
            new(new Set { Family = Ip, Table = "t", Name = "om", KeyType = 7, KeyLen = 4, Flags = (uint)NftSetFlags.Object,
                ObjType = (uint)NftObjectType.Counter }, []),
        };
        var objects = new List<NftObject>
        {
            new() { Family = Ip, Table = "t", Name = "c1", Type = (uint)NftObjectType.Counter, Data = new CounterExpr(0, 0) },
            new() { Family = Ip, Table = "t", Name = "c2", Type = (uint)NftObjectType.Counter, Data = new CounterExpr(0, 0) },
            new() { Family = Ip, Table = "t", Name = "q1", Type = (uint)NftObjectType.Quota, Data = new QuotaExpr(m.Quota) },
        };
        var dev = new SourceChain(new Chain
        {
            Family = NfProto.Netdev, Table = "t", Name = "dev",
            Hook = new ChainHook(NfHooks.NetdevIngress, 0, Devices: ["d1", "d2"]), Policy = 1,
        }, [.. m.Rules["dev"]]);
        var objectsDev = new List<NftObject>
        {
            new() { Family = NfProto.Netdev, Table = "t", Name = "c1", Type = (uint)NftObjectType.Counter, Data = new CounterExpr(0, 0) },
            new() { Family = NfProto.Netdev, Table = "t", Name = "c2", Type = (uint)NftObjectType.Counter, Data = new CounterExpr(0, 0) },
            new() { Family = NfProto.Netdev, Table = "t", Name = "q1", Type = (uint)NftObjectType.Quota, Data = new QuotaExpr(m.Quota) },
        };
        var devSets = new List<SourceSet>
        {
            new(new Set { Family = NfProto.Netdev, Table = "t", Name = "om", KeyType = 7, KeyLen = 4, Flags = (uint)NftSetFlags.Object,
                ObjType = (uint)NftObjectType.Counter }, []),
        };
        return
        [
            new SourceTable(new Table { Family = Ip, Name = "t" }, chains, sets, objects),
            new SourceTable(new Table { Family = NfProto.Netdev, Name = "t" }, [dev], devSets, objectsDev),
        ];
    }

    /// <summary>Everything a lift gives, in its order.</summary>
    static string Describe(LiftResult r) => string.Join("\n", new[]
        {
            r.Explain(),
            "counters " + string.Join(", ", r.Counters.Select(kv => $"{kv.Key}={kv.Value}")),
            "quotas " + string.Join(", ", r.Quotas.Select(kv => $"{kv.Key}={kv.Value}")),
            "limits " + string.Join(", ", r.Limits.Select(kv => $"{kv.Key}={kv.Value}")),
            "set names " + string.Join(", ", r.SetNames.Select(kv => $"{kv.Key}={kv.Value}")),
            "encoders " + string.Join(", ", r.SetEncoders.Keys),
            "origins " + string.Join(", ", r.Origins.Select(kv => $"{kv.Key}={kv.Value}")),
            "refusals " + string.Join("; ", r.Refusals),
        }.Concat(r.Chains.Select(c => c switch
        {
            ChainLift.Lifted l => $"lifted {l.Chain}: base {string.Join(" ", l.BaseChains)}; reached {string.Join(" ", l.Reached)}; " +
                $"sets {string.Join(" ", l.Sets)}; listing {string.Join(" ", l.Listing.Select(e => $"{e.Chain}/{e.Handle}={e.Lifted}"))}",
            ChainLift.Refused f => $"refused {f.Chain}: {f.Refusal}",
            _ => "?",
        })));

    static string Slots(CounterSlots s) =>
        string.Join(", ", s.Slots.OrderBy(kv => kv.Value).Select(kv => $"{kv.Key}={kv.Value}")) + " | " +
        string.Join(", ", s.Quotas.Slots.OrderBy(kv => kv.Value).Select(kv => $"{kv.Key}={kv.Value}")) + " | " +
        string.Join(", ", s.Limits.Slots.OrderBy(kv => kv.Value).Select(kv => $"{kv.Key}={kv.Value}"));

    static void Retain(CounterSlots s, LiftResult? kept)
    {
        s.Retain(kept?.Counters.Keys ?? []);
        s.Quotas.Retain(kept?.Quotas.Keys ?? []);
        s.Limits.Retain(kept?.Limits.Keys ?? []);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void AnExtendedLiftIsTheWholeLift(int seed)
    {
        var rng = new Random(seed);
        var m = new Model();
        foreach (var c in Chains) m.Rules[c] = [];
        foreach (var c in Chains)
            for (int i = 0; i < 5; i++) m.Rules[c].Add(NewRule(m, rng, c, plain: false));
        var cache = new RuleLiftCache();
        CounterSlots incSlots = new(), fullSlots = new();
        LiftResult? incCommitted = null, fullCommitted = null;
        int extended = 0, appends = 0;
        for (int step = 0; step < 400; step++)
        {
            var chain = Chains[rng.Next(Chains.Length)];
            var rules = m.Rules[chain];
            int edits = rng.Next(10) == 0 ? 2 : 1;
            for (int e = 0; e < edits; e++)
                switch (rng.Next(14))
                {
                    case < 7:
                        // mostly rules that read no table, which an extension lifts alone; some others
                        m.Rules[chain = Chains[rng.Next(Chains.Length)]].Add(NewRule(m, rng, chain, plain: rng.Next(5) > 0));
                        appends++;
                        break;
                    case 7: rules.Insert(rng.Next(rules.Count + 1), NewRule(m, rng, chain, plain: true)); break;
                    case 8 when rules.Count > 0: rules.RemoveAt(rng.Next(rules.Count)); break;
                    case 9 when rules.Count > 0: rules[rng.Next(rules.Count)] = rules[0] with { Handle = m.NextHandle++ }; break;
                    case 10: m.Elements = 1 + rng.Next(3); break;
                    case 11: m.Policy = (uint)rng.Next(2); break;
                    case 12: m.Quota = 5000 + (ulong)rng.Next(2); break;
                    case 13 when rules.Count > 0: rules.RemoveAt(rules.Count - 1); break;
                }
            var tables = Tables(m);
            var inc = NftLifter.LiftChains(tables, incSlots, cache);
            if (cache.Appended > 0) extended++;
            var full = NftLifter.LiftChains(tables, fullSlots);
            Assert.Equal(Describe(full), Describe(inc));
            Assert.Equal(full.Ruleset, inc.Ruleset);
            Assert.Equal(full.Listing.Select(r => r.Source), inc.Listing.Select(r => r.Source));
            Assert.Equal(Slots(fullSlots), Slots(incSlots));
            // a commit keeps the slots of what it lifted; an abort frees those the committed lift does not use
            if (rng.Next(8) == 0)
            {
                Retain(incSlots, incCommitted);
                Retain(fullSlots, fullCommitted);
            }
            else
            {
                Retain(incSlots, incCommitted = inc);
                Retain(fullSlots, fullCommitted = full);
            }
            Assert.Equal(Slots(fullSlots), Slots(incSlots));
        }
        Assert.True(extended > 50, $"{extended} of {appends} appends extended the previous lift");
    }

    [Fact]
    public void AnAppendToTenThousandRulesLiftsOneRule()
    {
        var rng = new Random(7);
        var m = new Model();
        foreach (var c in Chains) m.Rules[c] = [];
        for (int i = 0; i < 10_000; i++) m.Rules["in1"].Add(NewRule(m, rng, "in1", plain: true));
        var cache = new RuleLiftCache();
        var slots = new CounterSlots();
        var first = NftLifter.LiftChains(Tables(m), slots, cache);
        Assert.Equal(0, cache.Appended);
        slots.Retain(first.Counters.Keys);
        m.Rules["in1"].Add(NewRule(m, rng, "in1", plain: true));
        var tables = Tables(m);
        var second = NftLifter.LiftChains(tables, slots, cache);
        Assert.Equal(1, cache.Appended);
        Assert.Equal(10_000, cache.Hits);
        Assert.Equal(Describe(NftLifter.LiftChains(tables, slots)), Describe(second));
        // the rules before the appended one are the objects the first lift made
        Assert.Same(first.Ruleset.BaseChains[0].Rules[9_999], second.Ruleset.BaseChains[0].Rules[9_999]);
        // a delete from the middle: lifted whole again
        slots.Retain(second.Counters.Keys);
        m.Rules["in1"].RemoveAt(10);
        var third = NftLifter.LiftChains(Tables(m), slots, cache);
        Assert.Equal(0, cache.Appended);
        Assert.Equal(Describe(NftLifter.LiftChains(Tables(m), slots)), Describe(third));
    }
}
