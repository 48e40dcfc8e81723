using System.Collections.Immutable;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;

namespace Nft.Engine.Tests;

/// <summary>
/// The backend's view of the committed ruleset (<see cref="SourceView"/>) hands out each rule record's view again
/// while the record stays in the same chain: equal to the view made anew, the same object for an unchanged record,
/// and a new one with the new names when the chain (or table) is renamed.
/// </summary>
public class SourceViewTests
{
    static RuleRecord NewRule(ulong handle) => new(new Rule { Handle = handle, Expressions = [new CounterExpr(0, 0)] }, [null]);

    static RulesetSnapshot Snapshot(string table, string chain, ImmutableList<RuleRecord> rules) =>
        new([new TableRecord(new Table { Family = 2, Name = table, Handle = 1 }, new HandleCounter(100),
            [new ChainRecord(new Chain { Name = chain, Handle = 2 }, rules)], [], [])]);

    static void AssertFresh(RulesetSnapshot s, IReadOnlyList<Nft.Bytecode.Objects.SourceTable> view)
    {
        var t = s.Tables[0];
        var c = t.Chains[0];
        Assert.Equal(c.Rules.Select(r => r.Rule with { Family = t.Family, Table = t.Name, Chain = c.Name }),
            view[0].Chains[0].Rules);
        foreach (var r in view[0].Chains[0].Rules) Assert.Equal((t.Family, t.Name, c.Name), (r.Family, r.Table!, r.Chain!));
    }

    [Fact]
    public void AnUnchangedRuleKeepsItsViewARenamedChainGetsNewOnes()
    {
        var rules = ImmutableList.CreateRange(Enumerable.Range(1, 20).Select(h => NewRule((ulong)h)));
        var first = Snapshot("t", "c", rules);
        var v1 = SourceView.Of(first);
        AssertFresh(first, v1);

        var added = Snapshot("t", "c", rules.Add(NewRule(21)).SetItem(3, NewRule(4)));
        var v2 = SourceView.Of(added);
        AssertFresh(added, v2);
        for (int i = 0; i < 20; i++)
            if (i != 3) Assert.Same(v1[0].Chains[0].Rules[i], v2[0].Chains[0].Rules[i]);
        Assert.NotSame(v1[0].Chains[0].Rules[3], v2[0].Chains[0].Rules[3]);

        var renamed = Snapshot("t", "d", rules);
        var v3 = SourceView.Of(renamed);
        AssertFresh(renamed, v3);
        Assert.All(v3[0].Chains[0].Rules, r => Assert.Equal("d", r.Chain));
        var otherTable = Snapshot("u", "d", rules);
        AssertFresh(otherTable, SourceView.Of(otherTable));
    }
}
