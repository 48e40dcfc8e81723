using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Lowering;

/// <summary>
/// Drops the rules after an unconditional terminal rule of the same chain (no matchers, no statement
/// that can break, and a verdict that never falls through to the next rule: accept, drop, return,
/// goto, reject). nf_tables never evaluates them, so their statements never run and their counters
/// stay at zero: the counter ids move to the chain's <see cref="Chain.IdleCounters"/>, which still
/// get slots reading zero.
/// </summary>
public sealed class UnreachableRules : ILoweringPass
{
    public string Name => "unreachable-rules";

    public Ruleset Run(Ruleset ruleset) => ChainRewrite.Apply(ruleset, (_, rules) => Cut(rules));

    /// <summary>True when every packet reaching the rule leaves the chain at it.</summary>
    public static bool EndsChain(Rule rule)
    {
        if (!rule.Matchers.IsEmpty || rule.Verdict is not (AcceptVerdict or DropVerdict or ReturnVerdict or GotoVerdict or RejectVerdict)) return false;
        foreach (var s in rule.Statements) // a loop, not Any: it would box the list's enumerator for every rule
            if (s.MayBreak) return false;
        return true;
    }

    /// <summary>The rules up to the first that ends the chain, and the counters of the rest (null when nothing is cut).</summary>
    private static (ValueList<Rule> Rules, IReadOnlyList<ulong>? Idle) Cut(ValueList<Rule> rules)
    {
        for (var i = 0; i < rules.Count - 1; i++)
        {
            if (!EndsChain(rules[i])) continue;
            var idle = rules.Skip(i + 1).SelectMany(r => r.CounterIds).ToList();
            return (rules.Take(i + 1).ToValueList(), idle);
        }
        return (rules, null);
    }
}
