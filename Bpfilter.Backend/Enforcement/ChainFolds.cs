using System.Collections.Immutable;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>What is folded over a chain's rules in order; folding more rules onto the end extends it.</summary>
public interface IRuleFold
{
    /// <summary>Folds <paramref name="rules"/> from index <paramref name="from"/> on (the rules before it are folded already).</summary>
    void Fold(ImmutableArray<Rule> rules, int from);
}

/// <summary>
/// A fold of each chain's rules (<typeparamref name="T"/>) kept from one prepare to the next, so that a commit that
/// appends a rule to a chain of thousands folds one rule instead of walking the chain. Unchanged lifted rules are the
/// same objects from one commit to the next: when the rules a chain's fold was made from are, rule object by rule
/// object, the first rules of the chain now, only the rules after them are folded; anything else (a rule inserted,
/// replaced or deleted, the chain new) folds the chain from its start. Keyed by chain name (the front-end makes
/// names unique). Not thread-safe: callers prepare under their lock.
/// </summary>
public sealed class ChainFolds<T> where T : class, IRuleFold, new()
{
    sealed class Entry(T fold)
    {
        public ImmutableArray<Rule> Rules = ImmutableArray<Rule>.Empty;
        public readonly T Fold = fold;
    }

    readonly Dictionary<string, Entry> _chains = new(StringComparer.Ordinal);

    /// <summary>Chains folded from their start and rules folded, since construction (for tests).</summary>
    public int ChainsFolded { get; private set; }
    public int RulesFolded { get; private set; }

    /// <summary>The fold of <paramref name="rules"/>, the rules of chain <paramref name="chain"/> now.</summary>
    public T Of(string chain, ValueList<Rule> rules)
    {
        // the rules are an immutable array: kept as they are, not copied
        var now = rules.Items;
        if (!_chains.TryGetValue(chain, out var e) || !ReferencePrefix.StartsWith(now, e.Rules))
        {
            _chains[chain] = e = new Entry(new T());
            ChainsFolded++;
        }
        if (e.Rules.Length < now.Length)
        {
            RulesFolded += now.Length - e.Rules.Length;
            e.Fold.Fold(now, e.Rules.Length);
        }
        e.Rules = now;
        return e.Fold;
    }

    /// <summary>Forgets the chains <paramref name="ruleset"/> holds none of that name of.</summary>
    public void Retain(Ruleset ruleset)
    {
        if (_chains.Count == 0) return;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in ruleset.BaseChains) names.Add(c.Name);
        foreach (var c in ruleset.Chains) names.Add(c.Name);
        List<string>? stale = null;
        foreach (var name in _chains.Keys)
            if (!names.Contains(name)) (stale ??= []).Add(name);
        foreach (var name in stale ?? []) _chains.Remove(name);
    }
}
