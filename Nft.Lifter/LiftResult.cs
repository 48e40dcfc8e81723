using System.Text;
using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>One rule as the lifter saw it and what it made of it (for `explain`-style listings).</summary>
public sealed record RuleListing(byte Family, string Table, string Chain, ulong Handle, IReadOnlyList<Expression> Source, Rule Lifted);

/// <summary>
/// The lifted ruleset, the counter slot of every rule with a counter, the IR name of every set the
/// rules use (so element updates can be applied to the right map) and a per-rule listing.
/// </summary>
public sealed record LiftResult(
    Ruleset Ruleset,
    IReadOnlyDictionary<CounterKey, ulong> Counters,
    IReadOnlyDictionary<(byte Family, string Table, string Set), string> SetNames,
    IReadOnlyList<RuleListing> Listing)
{
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
