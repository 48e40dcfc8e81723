using System.Collections.Immutable;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

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

    /// <summary>
    /// A record copied with another rule object (a chain rename rewrites the jumps that way) shares the copied record's
    /// kept forms: its view and its saved NEWRULE message are of its own rule, not the kept ones; and records are equal
    /// as their rules and counters are, whatever forms were kept.
    /// </summary>
    [Fact]
    public void ARecordCopiedWithAnotherRuleGetsItsOwnViewAndMessage()
    {
        var r = NewRule(1);
        var first = Snapshot("t", "c", [r]);
        Assert.Equal(1UL, SourceView.Of(first)[0].Chains[0].Rules[0].Handle);
        var counters = new StateCodec.Counters(1, 1, 0);
        Assert.Equal(1UL, StateCodec.Decode(StateCodec.Encode(first, counters)).Snapshot.Tables[0].Chains[0].Rules[0].Handle);

        var copied = r with { Rule = r.Rule with { Handle = 7 } };
        var second = Snapshot("t", "c", [copied]);
        AssertFresh(second, SourceView.Of(second));
        Assert.Equal(7UL, SourceView.Of(second)[0].Chains[0].Rules[0].Handle);
        Assert.Equal(7UL, StateCodec.Decode(StateCodec.Encode(second, counters)).Snapshot.Tables[0].Chains[0].Rules[0].Handle);

        var same = new RuleRecord(r.Rule, r.Counters);
        Assert.Equal(r, same);
        Assert.Equal(r.GetHashCode(), same.GetHashCode());
        Assert.NotEqual(r, copied);
    }

    /// <summary>The backend's view of every commit.</summary>
    sealed class ViewBackend : IRulesetBackend
    {
        public readonly List<IReadOnlyList<SourceTable>> Views = new();
        public void Prepare(RulesetChange change) => Views.Add(change.Tables);
        public void Commit() { }
        public void Abort() { }
        public CounterValue? ReadCounter(CounterRef c) => null;
        public CounterValue? ReadElementCounter(ElementCounterRef e) => null;
        public void ResetCounter(CounterRef c) { }
    }

    static void AssertFresh(NfTablesEndpoint ep, IReadOnlyList<SourceTable> view)
    {
        var t = ep.Ruleset.Tables[0];
        Assert.Equal(t.Chains.Count, view[0].Chains.Count);
        for (int i = 0; i < t.Chains.Count; i++)
        {
            var c = t.Chains[i];
            Assert.Equal(c.Chain with { Family = t.Family, Table = t.Name }, view[0].Chains[i].Chain);
            Assert.Equal(c.Rules.Select(r => r.Rule with { Family = t.Family, Table = t.Name, Chain = c.Name }), view[0].Chains[i].Rules);
        }
    }

    static byte[] Append(uint seq, string chain, ulong packets) => AddRule(seq, "t", chain, w => Counter(w, packets));

    /// <summary>
    /// A chain a commit leaves alone keeps its view (the same object: not walked again), an appended chain's view is
    /// the view before it and the appended rules (those before are the same objects), and whatever the batch does to a
    /// chain (appends on appends, an insert, a replace, a delete, between appends) the view is the one made anew from
    /// the committed records.
    /// </summary>
    [Fact]
    public void AnUntouchedChainKeepsItsViewAnAppendedChainExtendsIt()
    {
        var be = new ViewBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        var first = new List<byte[]> { AddTable(2, "t"), AddChain(3, "t", "c"), AddChain(4, "t", "d") };
        for (uint i = 0; i < 20; i++) first.Add(Append(5 + i, i % 4 == 0 ? "d" : "c", i));
        Assert.Empty(ep.Process(Batch(first.ToArray()), Port));
        AssertFresh(ep, be.Views[^1]);
        var before = be.Views[^1][0];

        // nft add rule, three times in one batch
        Assert.Empty(ep.Process(Batch(Append(2, "c", 100), Append(3, "c", 101), Append(4, "c", 102)), Port));
        var after = be.Views[^1][0];
        AssertFresh(ep, be.Views[^1]);
        Assert.Same(before.Chains[1], after.Chains[1]);
        Assert.Equal(before.Chains[0].Rules.Count + 3, after.Chains[0].Rules.Count);
        for (int i = 0; i < before.Chains[0].Rules.Count; i++) Assert.Same(before.Chains[0].Rules[i], after.Chains[0].Rules[i]);

        // an insert at the head, appends around a replace and a delete, in one batch
        var c = ep.Ruleset.Tables[0].Chains[0];
        Assert.Empty(ep.Process(Batch(
            Append(2, "c", 200),
            AddRule(3, "t", "c", w => Counter(w, 201), flags: NlmFlags.Request | NlmFlags.Create),
            Append(4, "c", 202),
            AddRule(5, "t", "c", w => Counter(w, 203), flags: NlmFlags.Request | NlmFlags.Replace, handle: c.Rules[3].Handle),
            Append(6, "c", 204),
            Msg(8 /* DELRULE */, NlmFlags.Request, 7, Ip, w => { w.PutString(1, "t"); w.PutString(2, "c"); w.PutU64Be(3, c.Rules[5].Handle); }),
            Append(8, "c", 205),
            Append(9, "d", 206)), Port));
        AssertFresh(ep, be.Views[^1]);

        // more appends in one batch than are looked up one by one: the chain is walked
        Assert.Empty(ep.Process(Batch(Enumerable.Range(0, 100).Select(i => Append(2 + (uint)i, "d", 400 + (ulong)i)).ToArray()), Port));
        AssertFresh(ep, be.Views[^1]);
        // and the next commit's appends extend that view again
        var walked = be.Views[^1][0];
        Assert.Empty(ep.Process(Batch(Append(2, "d", 500), Append(3, "d", 501)), Port));
        AssertFresh(ep, be.Views[^1]);
        for (int i = 0; i < walked.Chains[1].Rules.Count; i++) Assert.Same(walked.Chains[1].Rules[i], be.Views[^1][0].Chains[1].Rules[i]);
        // exactly as many appends as are looked up, and one more, on a chain made in the same batch
        foreach (int n in new[] { 64, 65 })
        {
            var batch = new List<byte[]> { AddChain(2, "t", $"n{n}") };
            for (int i = 0; i < n; i++) batch.Add(Append(3 + (uint)i, $"n{n}", (ulong)i));
            Assert.Empty(ep.Process(Batch(batch.ToArray()), Port));
            AssertFresh(ep, be.Views[^1]);
            Assert.Empty(ep.Process(Batch(Append(2, $"n{n}", 600)), Port));
            AssertFresh(ep, be.Views[^1]);
        }

        // a refused batch leaves nothing behind: the next append extends the committed view
        Assert.NotEmpty(ep.Process(Batch(Append(2, "c", 300), AddRule(3, "t", "nosuch", w => Counter(w))), Port));
        Assert.Empty(ep.Process(Batch(Append(2, "c", 301)), Port));
        AssertFresh(ep, be.Views[^1]);
    }
}
