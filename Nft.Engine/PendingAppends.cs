using System.Collections.Immutable;
using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// Plain appends (NEWRULE with NLM_F_APPEND and no handle or position, the whole of an `nft -f` of a chain's rules)
/// queued in a list builder instead of rebuilding the snapshot per rule: each append made a new rule list (a path of
/// tree nodes), a new chain list and a new table list, 100,000 times for 100,000 rules (issue 12). They are taken in at
/// the next read of <see cref="Transaction.Work"/>, so every other message, the commit and the notifications see them
/// as if applied one by one. They change one chain's rule list and nothing else: lookups of tables and chains by name
/// or handle may read the snapshot without taking them in.
/// </summary>
internal sealed partial class Transaction
{
    /// <summary>The chain (table index, chain index, its record before the appends) and its rules with the appended ones.</summary>
    sealed record PendingAppends(int Ti, int Ci, ChainRecord From, ImmutableList<RuleRecord>.Builder Rules);

    PendingAppends? _pending;

    /// <summary>Appends <paramref name="rule"/> to chain <paramref name="ci"/> of table <paramref name="ti"/>.</summary>
    void QueueAppend(int ti, int ci, RuleRecord rule)
    {
        if (_pending is not { } p || p.Ti != ti || p.Ci != ci)
        {
            if (_pending != null) TakeInAppends();
            var chain = _work.Tables[ti].Chains[ci];
            p = _pending = new PendingAppends(ti, ci, chain, chain.Rules.ToBuilder());
        }
        p.Rules.Add(rule);
    }

    /// <summary>Puts the queued appends into the snapshot: one new chain record, linked for its view as N single appends are.</summary>
    void TakeInAppends()
    {
        var p = _pending!;
        _pending = null;
        var t = _work.Tables[p.Ti];
        var nc = SourceView.Append(p.From, p.Rules.ToImmutable());
        _work = _work with { Tables = _work.Tables.SetItem(p.Ti, t with { Chains = t.Chains.SetItem(p.Ci, nc) }) };
    }
}
