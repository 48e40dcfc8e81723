using Nft.Engine;
using Nft.Netlink;
using Xunit.Abstractions;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// NEWRULE notifications of big batches: each rule in batch order with the handle of the rule before it in the
/// committed chain (nf_tables_rule_notify's NFTA_RULE_POSITION when it has neighbours on both sides), found
/// without walking the chain per rule.
/// </summary>
[Collection(nameof(ScaleTests))]
public class RuleNotifyPositionTests(ITestOutputHelper output)
{
    static readonly ushort NewRule = Nfnl.Type(Nfnl.SubsysNftables, 6), DelRule = Nfnl.Type(Nfnl.SubsysNftables, 8);

    static byte[] DeleteRule(uint seq, ulong handle) => Msg(8, NlmFlags.Request, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "c");
        w.PutU64Be(3, handle);
    });

    /// <summary>
    /// 3,000 messages into a chain of two rules: appends, inserts at the head, inserts before and appends after a
    /// rule (NFTA_RULE_POSITION), replacements and deletions, positions drawn from the rules there at that point.
    /// The test keeps the chain itself: the events must be the batch's rules in its order, each with the handle
    /// before it in that chain, none for the first and last rule and for a rule deleted later in the batch.
    /// </summary>
    [Fact]
    public void ABigMixedBatchNotifiesEachRuleInBatchOrderWithItsCommittedNeighbour()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"),
            AddRule(4, "t", "c", w => Verdict(w, 1)), AddRule(5, "t", "c", w => Verdict(w, 1))), Port));
        var chain = ep.Ruleset.Tables[0].Chains[0].Rules.Select(r => r.Handle).ToList();
        ulong next = chain.Max() + 1; // the table's handles go on from its last rule
        var rnd = new Random(12);
        var msgs = new List<byte[]>();
        var notified = new List<(ulong Handle, uint Seq)>();
        for (uint seq = 10; seq < 3010; seq++)
        {
            int kind = rnd.Next(10);
            ulong at = chain[rnd.Next(chain.Count)];
            int i = chain.IndexOf(at);
            switch (kind)
            {
                case 0: // insert at the head
                    msgs.Add(AddRule(seq, "t", "c", w => Verdict(w, 1), flags: Create));
                    chain.Insert(0, next);
                    break;
                case 1: // insert before a rule
                    msgs.Add(AddRule(seq, "t", "c", w => Verdict(w, 1), flags: Create, position: at));
                    chain.Insert(i, next);
                    break;
                case 2: // append after a rule
                    msgs.Add(AddRule(seq, "t", "c", w => Verdict(w, 1), position: at));
                    chain.Insert(i + 1, next);
                    break;
                case 3 when chain.Count > 2: // replace: the same handle, in place
                    msgs.Add(AddRule(seq, "t", "c", w => Verdict(w, 0), flags: NlmFlags.Request | NlmFlags.Replace, handle: at));
                    notified.Add((at, seq));
                    continue;
                case 4 when chain.Count > 2:
                    msgs.Add(DeleteRule(seq, at));
                    chain.RemoveAt(i);
                    continue;
                default: // append at the end
                    msgs.Add(AddRule(seq, "t", "c", w => Verdict(w, 1)));
                    chain.Add(next);
                    break;
            }
            notified.Add((next++, seq));
        }
        var events = new List<NetlinkEvent>();
        Assert.Empty(ep.Process(Batch(msgs.ToArray()), Port, events));
        Assert.Equal(chain, ep.Ruleset.Tables[0].Chains[0].Rules.Select(r => r.Handle));

        var rules = Messages(events.Select(e => e.Datagram)).Where(m => m.H.Type == NewRule).ToList();
        Assert.Equal(notified.Select(n => n.Seq), rules.Select(m => m.H.Seq));
        var index = chain.Select((h, k) => (h, k)).ToDictionary(x => x.h, x => x.k);
        for (int k = 0; k < rules.Count; k++)
        {
            var a = Attrs(rules[k].Bytes);
            Assert.Equal(notified[k].Handle, Be64(a[3]));
            ulong? expected = index.TryGetValue(notified[k].Handle, out int at) && at > 0 && at < chain.Count - 1 ? chain[at - 1] : null;
            Assert.Equal(expected, a.TryGetValue(6, out var pos) ? Be64(pos) : null);
        }
        Assert.Contains(rules, m => !Attrs(m.Bytes).ContainsKey(6) && index.ContainsKey(Be64(Attrs(m.Bytes)[3]))); // an end rule
        Assert.Contains(events.SelectMany(e => Messages([e.Datagram])), m => m.H.Type == DelRule);
    }

    /// <summary>
    /// 20,000 appended rules with a listener: writing their notifications looked each rule up in its chain, a walk of
    /// the immutable list per rule (30,000 rules: 377 s of notifications in the Debug build at load 30; indexed once, 2.2 s).
    /// </summary>
    [Fact]
    public void TwentyThousandAppendedRulesAreNotifiedWithoutWalkingTheChainPerRule()
    {
        var outcomes = new List<BatchOutcome>();
        var ep = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), BatchFinished = outcomes.Add });
        const int N = 20_000;
        var msgs = new byte[N + 2][];
        msgs[0] = AddTable(2, "t");
        msgs[1] = AddChain(3, "t", "c");
        for (int i = 0; i < N; i++) msgs[i + 2] = AddRule((uint)(4 + i), "t", "c", w => Verdict(w, 1));
        var events = new List<NetlinkEvent>();
        Assert.Empty(ep.Process(Batch(msgs), Port, events));
        var rules = Messages(events.Select(e => e.Datagram)).Where(m => m.H.Type == NewRule).Select(m => Attrs(m.Bytes)).ToList();
        Assert.Equal(N, rules.Count);
        // every rule but the first and the last names the one before it
        Assert.False(rules[0].ContainsKey(6));
        Assert.False(rules[^1].ContainsKey(6));
        for (int k = 1; k < N - 1; k++) Assert.Equal(Be64(rules[k - 1][3]), Be64(rules[k][6]));
        var phases = Assert.IsType<BatchPhases>(outcomes[^1].Phases);
        output.WriteLine(phases.ToString());
        // a generous bound for a loaded shared machine: the per-rule walk takes minutes here
        Assert.True(phases.Notify < TimeSpan.FromSeconds(20), phases.ToString());
    }
}
