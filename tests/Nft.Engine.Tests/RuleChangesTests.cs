using System.Collections.Immutable;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;

namespace Nft.Engine.Tests;

/// <summary>
/// The rule journal's diff of a chain (<see cref="StateCodec.RuleChanges"/>) matches only the rules between the
/// unchanged ends by handle, or, given the batch's record of the rules it changed (<see cref="RuleTouches"/>), looks up
/// only those: on randomized add, insert, replace and delete sequences both give exactly what matching every rule of
/// the chain by handle gives (the whole-chain diff), removed handles in handle order.
/// </summary>
public class RuleChangesTests
{
    static RuleRecord NewRule(ulong handle) =>
        new(new Rule { Handle = handle, Expressions = [new CounterExpr(0, 0)] }, [null]);

    static RulesetSnapshot Snapshot(Table table, HandleCounter handles, Chain chain, ImmutableList<RuleRecord> rules) =>
        new([new TableRecord(table, handles, [new ChainRecord(chain, rules)], [], [])]);

    /// <summary>The whole-chain diff: every old rule by handle, every new rule looked up.</summary>
    static (List<ulong> Removed, List<(int, RuleRecord)> Puts) Reference(ImmutableList<RuleRecord> a, ImmutableList<RuleRecord> b)
    {
        var old = new Dictionary<ulong, RuleRecord>();
        foreach (var r in a) old[r.Handle] = r;
        var puts = new List<(int, RuleRecord)>();
        for (int i = 0; i < b.Count; i++)
            if (!old.Remove(b[i].Handle, out var kept) || !ReferenceEquals(kept, b[i])) puts.Add((i, b[i]));
        return ([.. old.Keys.Order()], puts);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TheDiffBetweenTheUnchangedEndsEqualsTheWholeChainDiff(int seed)
    {
        var rng = new Random(seed);
        var table = new Table { Family = 2, Name = "t", Handle = 1 };
        var chain = new Chain { Family = 2, Table = "t", Name = "c", Handle = 2 };
        var handles = new HandleCounter(2);
        var rules = ImmutableList.CreateRange(Enumerable.Range(0, 50).Select(_ => NewRule(handles.Next())));
        var tr = new TableRecord(table, handles, [], [], []);
        var cr = new ChainRecord(chain, []);
        for (int step = 0; step < 400; step++)
        {
            var next = rules;
            // the batch's own record of what it changed, as the transaction keeps it
            var touches = new RuleTouches();
            // a batch of one to four changes, anywhere in the chain
            for (int k = rng.Next(1, 5); k > 0; k--)
            {
                int at = next.Count == 0 ? 0 : rng.Next(next.Count);
                RuleRecord r;
                switch (rng.Next(next.Count == 0 ? 1 : 5))
                {
                    case 0: next = next.Add(r = NewRule(handles.Next())); touches.Added(tr, cr, r); break;        // add (append)
                    case 1: next = next.Insert(at, r = NewRule(handles.Next())); touches.Added(tr, cr, r); break; // insert
                    case 2: touches.Replaced(tr, cr, next[at], r = NewRule(next[at].Handle)); next = next.SetItem(at, r); break; // replace
                    case 3: touches.Removed(tr, cr, next[at]); next = next.RemoveAt(at); break;                   // delete (maybe a rule added in this batch)
                    case 4: next = next.SetItem(at, next[at] with { Counters = [null] }); touches.Incomplete(); break; // a counter reset: not a batch change
                }
            }
            var (removed, puts) = Reference(rules, next);
            foreach (var record in new[] { null, touches })
            {
                var changes = StateCodec.RuleChanges(Snapshot(table, handles, chain, rules), Snapshot(table, handles, chain, next),
                    new HashSet<(byte, string, string)>(), record);
                var c = Assert.Single(changes!);
                Assert.Equal(next.Count, c.Length);
                Assert.Equal(removed, c.Removed);
                Assert.Equal(puts.Count, c.Puts.Count);
                for (int i = 0; i < puts.Count; i++)
                {
                    Assert.Equal(puts[i].Item1, c.Puts[i].Index);
                    Assert.Same(puts[i].Item2, c.Puts[i].Rule);
                }
            }
            rules = next;
        }
    }
}
