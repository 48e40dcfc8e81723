using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Lowering;

/// <summary>
/// Rewrites the rules of every chain (base and regular) of a ruleset. The rewrite returns the new
/// rules and the counters of the rules it removed (null: the chain is unchanged); those counters
/// join the chain's idle counters, so they keep their slots and read zero.
/// </summary>
internal static class ChainRewrite
{
    public delegate (ValueList<Rule> Rules, IReadOnlyList<ulong>? Idle) RulesRewrite(string chain, ValueList<Rule> rules);

    public static Ruleset Apply(Ruleset ruleset, RulesRewrite rewrite) => ruleset with
    {
        BaseChains = ruleset.BaseChains.Select(c =>
        {
            var (rules, idle) = rewrite(c.Name, c.Rules);
            return idle is null ? c : c with { Rules = rules, IdleCounters = c.IdleCounters.Concat(idle).ToValueList() };
        }).ToValueList(),
        Chains = ruleset.Chains.Select(c =>
        {
            var (rules, idle) = rewrite(c.Name, c.Rules);
            return idle is null ? c : c with { Rules = rules, IdleCounters = c.IdleCounters.Concat(idle).ToValueList() };
        }).ToValueList(),
    };
}
