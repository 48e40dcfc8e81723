using System.Collections.Immutable;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The run of rules with one lookup key (<see cref="RuleGrouping.KeyOf"/>) a chain's rules end with: rules
/// <see cref="Start"/> to the end all have key <see cref="Key"/> (null: the last rule has none), the one before
/// <see cref="Start"/> another. Kept per chain (<see cref="ChainFolds{T}"/>), it lets <see cref="GroupedRunEdit"/> find
/// the run a rule appended to the chain joins without walking the run (10,000 same-shape rules are one run).
/// </summary>
public sealed class TrailingRun : IRuleFold
{
    public MatchKey? Key { get; private set; }
    public int Start { get; private set; }
    readonly HashSet<Value> _values = [];
    /// <summary>The run's distinct key values (<see cref="RuleGrouping.ValueOf"/>).</summary>
    public IReadOnlySet<Value> Values => _values;
    /// <summary>Whether a rule of the run jumps.</summary>
    public bool Jumps { get; private set; }
    /// <summary>Whether a rule before the run ends the chain (<see cref="UnreachableRules.EndsChain"/>).</summary>
    public bool EndedBefore { get; private set; }
    /// <summary>Whether any rule folded ends the chain.</summary>
    bool _ended;

    public void Fold(ImmutableArray<Rule> rules, int from)
    {
        for (var x = from; x < rules.Length; x++)
        {
            var r = rules[x];
            var key = RuleGrouping.KeyOf(r);
            if (key == null || key != Key)
            {
                Key = key;
                Start = x;
                _values.Clear();
                Jumps = false;
                EndedBefore = _ended;
            }
            if (key != null)
            {
                _values.Add(RuleGrouping.ValueOf(r));
                Jumps |= r.Verdict is JumpVerdict;
            }
            _ended |= UnreachableRules.EndsChain(r);
        }
    }
}
