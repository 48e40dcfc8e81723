namespace Bpfilter.Backend.Ir;

/// <summary>
/// A rule: all matchers must match (in order; the first failure goes to the next rule), then the
/// counter (if any) counts the packet and its bytes, then the verdict applies.
/// CounterId names a counter slot chosen by the front-end (e.g. the nft rule handle); rules sharing
/// an id share the counter (named counters). Counters can be read back by id from the loaded program.
/// Origin is free text for error messages (`inet filter input handle 4`), not part of code generation.
/// </summary>
public sealed record Rule(ValueList<Matcher> Matchers, Verdict Verdict, ulong? CounterId = null)
{
    public Rule(Verdict verdict, params Matcher[] matchers) : this(ValueList.Of(matchers), verdict) { }

    public string? Origin { get; init; }

    /// <summary>Matcher shapes and verdict kind: same-shape rules are candidates for one map lookup.</summary>
    public RuleShape Shape => new(Matchers.Select(m => m.Shape).ToValueList(), Verdict.GetType());

    public override string ToString()
    {
        var parts = Matchers.Select(m => m.ToString()).ToList();
        if (CounterId is { } id) parts.Add($"counter #{id}");
        parts.Add(Verdict.ToString()!);
        return string.Join(" ", parts);
    }
}

public sealed record RuleShape(ValueList<MatcherShape> Matchers, Type VerdictKind);
