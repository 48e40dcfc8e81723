using System.Text;
using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>One rule as the lifter saw it and what it made of it (for `explain`-style listings).</summary>
public sealed record RuleListing(byte Family, string Table, string Chain, ulong Handle, IReadOnlyList<Expression> Source, Rule Lifted);

/// <summary>
/// The lifted ruleset (every chain that lifted), the counter slot of every rule with a counter, the
/// IR name of every set the rules use (so element updates can be applied to the right map) and a
/// per-rule listing; beside them the result of each chain, the refusals in ruleset order, which
/// nf_tables chain each IR chain name stands for, and how to convert elements of each set.
/// </summary>
public sealed record LiftResult(
    Ruleset Ruleset,
    IReadOnlyDictionary<CounterKey, ulong> Counters,
    IReadOnlyDictionary<(byte Family, string Table, string Set), string> SetNames,
    IReadOnlyList<RuleListing> Listing)
{
    /// <summary>One result per base chain, and per regular chain no base chain reaches, in lifting order.</summary>
    public IReadOnlyList<ChainLift> Chains { get; init; } = [];

    /// <summary>Everything refused, the refusal nearest the start of the ruleset first.</summary>
    public IReadOnlyList<LiftRefusal> Refusals { get; init; } = [];

    /// <summary>The nf_tables chain of each IR base chain and regular chain name (IR names stay opaque).</summary>
    public IReadOnlyDictionary<string, ChainId> Origins { get; init; } = new Dictionary<string, ChainId>();

    /// <summary>Element conversion of every set the rules read, by (family, table, set).</summary>
    public IReadOnlyDictionary<(byte Family, string Table, string Set), SetEncoder> SetEncoders { get; init; } =
        new Dictionary<(byte, string, string), SetEncoder>();

    /// <summary>The state slot of every quota the lifted rules use (anonymous and named).</summary>
    public IReadOnlyDictionary<StatefulKey, ulong> Quotas { get; init; } = new Dictionary<StatefulKey, ulong>();

    /// <summary>The state slot of every limit the lifted rules use (anonymous and named).</summary>
    public IReadOnlyDictionary<StatefulKey, ulong> Limits { get; init; } = new Dictionary<StatefulKey, ulong>();

    /// <summary>Each rule's expressions, nft --debug=netlink style, followed by the matchers lifted from them; then the IR.</summary>
    public string Explain()
    {
        var sb = new StringBuilder();
        foreach (var r in Listing)
        {
            sb.Append(FamilyNames.Of(r.Family)).Append(' ').Append(r.Table).Append(' ').Append(r.Chain).Append(" handle ").Append(r.Handle).Append('\n');
            for (int i = 0; i < r.Source.Count; i++)
                sb.Append("  ").Append(i.ToString().PadLeft(2)).Append(' ').Append(ExprFormatter.Format(r.Source[i])).Append('\n');
            sb.Append("  => ").Append(r.Lifted).Append("\n\n");
        }
        sb.Append(Ruleset);
        return sb.ToString();
    }
}

/// <summary>One rule lifted on its own, with the sets it reads.</summary>
public sealed record LiftedRule(Rule Rule, IReadOnlyList<Set> Sets);
