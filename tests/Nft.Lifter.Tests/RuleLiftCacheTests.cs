using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter.Tests;

/// <summary>
/// The per-rule lift cache (<see cref="RuleLiftCache"/>): a second lift of the same rule objects gives the
/// same result as a lift without it, reusing exactly the rules whose lift reads nothing from their table,
/// and a reused counter keeps the slot the counter slots give its key.
/// </summary>
public class RuleLiftCacheTests
{
    [Theory]
    [InlineData("hooks")]
    [InlineData("matches")]
    [InlineData("sets")]
    [InlineData("ct")]
    public void ASecondLiftReusesTheRulesThatReadNoTableAndEqualsAFreshLift(string corpus)
    {
        var tables = CorpusLoader.Load(corpus);
        var slots = new CounterSlots();
        var cache = new RuleLiftCache();
        var first = NftLifter.LiftChains(tables, slots, cache);
        Assert.Equal(0, cache.Hits);
        var second = NftLifter.LiftChains(tables, slots, cache);
        var fresh = NftLifter.LiftChains(tables, slots);

        Assert.Equal(fresh.Ruleset, second.Ruleset);
        Assert.Equal(first.Ruleset, second.Ruleset);
        Assert.Equal(fresh.Counters, second.Counters);
        Assert.Equal(fresh.Refusals, second.Refusals);
        // reused: the rules of lifted chains made only of payload, meta loads, plain immediates, bitwise,
        // byteorder, cmp, range and counter (a chain reached from two base chains counts twice)
        var pure = first.Listing.Count(r => r.Source.All(e => e is PayloadExpr or BitwiseExpr or ByteorderExpr or CmpExpr or RangeExpr or CounterExpr
            or MetaExpr { IsSet: false } or ImmediateExpr { Verdict: not { IsJumpOrGoto: true } }));
        Assert.True(cache.Hits >= pure, $"{cache.Hits} reused, {pure} listed rules read no table");
        // every rule of the ct corpus reads ct: none is kept; the others have rules to reuse
        if (corpus == "ct") Assert.Equal(0, pure);
        else Assert.True(pure > 0, $"{corpus}: no rule to reuse");
    }

    [Fact]
    public void AReusedCounterWhoseSlotWasHandedToAnotherKeyIsLiftedAgain()
    {
        var tables = CorpusLoader.Load("hooks");
        var slots = new CounterSlots();
        var cache = new RuleLiftCache();
        var first = NftLifter.LiftChains(tables, slots, cache);
        Assert.NotEmpty(first.Counters);
        // an aborted transaction frees every slot; another key takes the lowest
        slots.Retain([]);
        slots.GetOrAdd(CounterKey.Named(first.Counters.Keys.First().Family, "elsewhere", "c"));
        var second = NftLifter.LiftChains(tables, slots, cache);

        foreach (var r in second.Listing)
            if (r.Lifted.CounterId is ulong id && r.Source.Any(e => e is CounterExpr))
                Assert.Equal(slots.Slots[new CounterKey(r.Family, r.Table, r.Chain, r.Handle)], id);
        Assert.Equal(second.Counters.Count, second.Counters.Values.Distinct().Count());
        Assert.Equal(NftLifter.LiftChains(tables, slots).Ruleset, second.Ruleset);
    }
}
