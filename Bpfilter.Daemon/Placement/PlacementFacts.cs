using Nft.Bytecode.Objects;
using Nft.Lifter;
using SourceRule = Nft.Bytecode.Objects.Rule;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Each chain's <see cref="ChainFacts"/> kept from one placement to the next, so that a commit that appends a
/// rule to a chain of thousands folds one rule instead of walking every expression of the chain again. The
/// engine hands out a committed rule as the same immutable object for as long as it stays in its chain
/// (<c>SourceView</c>), so the facts of a chain still hold when the rules they were folded from are, by
/// reference, the first rules of the chain now: only the rules after them are folded. Anything else (a rule
/// inserted, replaced or deleted, the chain new) folds the chain from its start. Each placement keeps only the
/// chains it met. Not thread-safe: the daemon places under its lock.
/// </summary>
public sealed class PlacementFacts
{
    /// <param name="rules">A copy of the rules folded (the caller's list is not ours to trust not to change).</param>
    sealed class Entry(SourceRule[] rules, ChainFacts facts)
    {
        public SourceRule[] Rules = rules;
        public ChainFacts Facts = facts;
        public int Seen;
    }

    readonly Dictionary<ChainId, Entry> _chains = [];
    int _generation;

    /// <summary>Chains folded from their start and rules folded, since construction (for tests).</summary>
    public int ChainsFolded { get; private set; }
    public int RulesFolded { get; private set; }

    /// <summary>Starts a placement: the chains it does not meet are dropped at <see cref="EndPlacement"/>.</summary>
    public void BeginPlacement() => _generation++;

    public void EndPlacement()
    {
        List<ChainId>? stale = null;
        foreach (var (id, e) in _chains)
            if (e.Seen != _generation) (stale ??= []).Add(id);
        foreach (var id in stale ?? []) _chains.Remove(id);
    }

    public ChainFacts Of(SourceTable table, SourceChain chain)
    {
        var id = new ChainId(table.Family, table.Name, chain.Name);
        var rules = chain.Rules;
        if (_chains.TryGetValue(id, out var e) && Bpfilter.Backend.Ir.ReferencePrefix.StartsWith(rules, e.Rules))
        {
            if (e.Rules.Length < rules.Count)
            {
                RulesFolded += rules.Count - e.Rules.Length;
                e.Facts.Fold(chain.Name, rules, e.Rules.Length);
                e.Rules = rules.ToArray();
            }
        }
        else
        {
            var facts = new ChainFacts();
            facts.Fold(chain.Name, rules, 0);
            ChainsFolded++;
            RulesFolded += rules.Count;
            _chains[id] = e = new Entry(rules.ToArray(), facts);
        }
        e.Seen = _generation;
        return e.Facts;
    }
}
