using System.Collections.Immutable;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// Appends queued within a batch (Transaction's PendingAppends) and taken in at once (<see cref="SourceView.Append(ChainRecord, ImmutableList{RuleRecord})"/>)
/// give what the same appends one at a time give: the same rules, the same backend view, and every other message of the
/// batch sees the appended rules.
/// </summary>
public class PendingAppendsTests
{
    static RuleRecord NewRule(ulong handle) => new(new Rule { Handle = handle, Expressions = [new CounterExpr(0, 0)] }, [null]);

    static RulesetSnapshot Snapshot(ChainRecord c) =>
        new([new TableRecord(new Table { Family = 2, Name = "t", Handle = 1 }, new HandleCounter(1000), [c], [], [])]);

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(500)]
    public void AppendingNRulesInOneStepGivesTheViewOfNSingleAppends(int n)
    {
        var start = new ChainRecord(new Chain { Name = "c", Handle = 2 }, ImmutableList.CreateRange(Enumerable.Range(1, 10).Select(h => NewRule((ulong)h))));
        var before = SourceView.Of(Snapshot(start)); // its view is made: appends link to it
        var added = Enumerable.Range(11, n).Select(h => NewRule((ulong)h)).ToList();

        var single = start;
        foreach (var r in added) single = SourceView.Append(single, r);
        var bulk = SourceView.Append(start, start.Rules.AddRange(added));

        Assert.Equal(single.Rules, bulk.Rules);
        Assert.Equal(single.Chain, bulk.Chain);
        var vs = SourceView.Of(Snapshot(single))[0].Chains[0];
        var vb = SourceView.Of(Snapshot(bulk))[0].Chains[0];
        Assert.Equal(vs.Chain, vb.Chain);
        Assert.Equal(vs.Rules, vb.Rules);
        Assert.Equal(Enumerable.Range(1, 10 + n).Select(h => (ulong?)h), vb.Rules.Select(r => r.Handle));
        Assert.All(vb.Rules, r => Assert.Equal(("t", "c"), (r.Table!, r.Chain!)));
        // the rules the start record had keep the views made for it
        for (int i = 0; i < 10; i++) Assert.Same(before[0].Chains[0].Rules[i], vb.Rules[i]);
    }

    static byte[] DeleteRule(uint seq, string chain, ulong handle) => Msg(8, NlmFlags.Request, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, chain);
        w.PutU64Be(3, handle);
    });

    /// <summary>
    /// Appends to two chains in turn, with an insert at the head, an append after a rule appended earlier in the batch,
    /// a replacement and deletions of such rules in between: one batch ends with the rules, handles and listing that the
    /// same messages give each in a batch of its own.
    /// </summary>
    [Fact]
    public void ABatchOfAppendsAmongOtherMessagesEndsAsTheSameMessagesOneBatchEach()
    {
        // handles: chains 1 and 2, rules from 3 on in message order
        var msgs = new List<byte[]>();
        uint seq = 10;
        for (int i = 0; i < 5; i++) msgs.Add(AddRule(seq++, "t", "c", w => Verdict(w, 1)));   // 3-7
        for (int i = 0; i < 3; i++) msgs.Add(AddRule(seq++, "t", "d", w => Verdict(w, 0)));   // 8-10
        msgs.Add(AddRule(seq++, "t", "c", w => Counter(w)));                                  // 11
        msgs.Add(AddRule(seq++, "t", "c", w => Verdict(w, 1), flags: Create));                // 12, at the head
        msgs.Add(AddRule(seq++, "t", "c", w => Verdict(w, 0), position: 11));                 // 13, after 11
        msgs.Add(AddRule(seq++, "t", "c", w => Verdict(w, 1)));                               // 14
        msgs.Add(DeleteRule(seq++, "c", 14));
        msgs.Add(AddRule(seq++, "t", "d", w => Verdict(w, 1)));                               // 15
        msgs.Add(AddRule(seq++, "t", "d", w => Counter(w, 3, 4), flags: NlmFlags.Request | NlmFlags.Replace, handle: 15));
        msgs.Add(DeleteRule(seq++, "d", 9));
        msgs.Add(AddRule(seq++, "t", "c", w => Verdict(w, 0)));                               // 16
        msgs.Add(AddRule(seq++, "t", "d", w => Verdict(w, 0)));                               // 17

        var one = NewEndpoint();
        Assert.Empty(one.Process(Batch([AddTable(2, "t"), AddChain(3, "t", "c"), AddChain(4, "t", "d"), .. msgs]), Port));
        var each = NewEndpoint();
        Assert.Empty(each.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddChain(4, "t", "d")), Port));
        foreach (var m in msgs) Assert.Empty(each.Process(Batch(m), Port));

        var handles = (NfTablesEndpoint ep) => ep.Ruleset.Tables[0].Chains.Select(c => string.Join(",", c.Rules.Select(r => r.Handle))).ToList();
        Assert.Equal(["12,3,4,5,6,7,11,13,16", "8,10,15,17"], handles(one));
        Assert.Equal(handles(each), handles(one));
        // the listing: every rule's expressions (counters included), handles and positions; past the nfgenmsg, whose
        // res_id is the ruleset generation (one batch against 16)
        var list = (NfTablesEndpoint ep) => Messages(ep.Process(Dump(7, Ip), Port)).SelectMany(m => m.Bytes[20..]).ToArray();
        Assert.Equal(13, Messages(one.Process(Dump(7, Ip), Port)).Count(m => m.H.Type == Nfnl.Type(Nfnl.SubsysNftables, 6)));
        Assert.Equal(list(each), list(one));
    }
}
