namespace Bpfilter.Backend.Ir;

/// <summary>
/// A rule: all matchers must match (in order; the first failure goes to the next rule), then the
/// statements run in order (counter, limit, log...; one that breaks sends the packet to the next
/// rule), then the verdict applies. Statements keep nf_tables' order: a counter before a limit
/// counts every packet, after it only those the limit lets through.
/// Origin is free text for error messages (`inet filter input handle 4`), not part of code generation.
/// </summary>
public sealed record Rule
{
    public Rule(ValueList<Matcher> matchers, ValueList<Statement> statements, Verdict verdict)
    {
        if (statements.OfType<Verdict>().Any())
            throw new ArgumentException("a verdict ends a rule: it cannot be one of its statements", nameof(statements));
        Matchers = matchers;
        Statements = statements;
        Verdict = verdict;
    }

    /// <summary>Matchers, then a counter (if any) then the verdict: the common shape of a counted rule.</summary>
    public Rule(ValueList<Matcher> Matchers, Verdict Verdict, ulong? CounterId = null)
        : this(Matchers, CounterId is { } id ? ValueList.Of<Statement>(new CounterStatement(id)) : ValueList<Statement>.Empty, Verdict) { }

    public Rule(Verdict verdict, params Matcher[] matchers) : this(ValueList.Of(matchers), verdict) { }

    public ValueList<Matcher> Matchers { get; init; }

    /// <summary>What runs after the matchers, in order, before the verdict.</summary>
    public ValueList<Statement> Statements { get; init; }

    public Verdict Verdict { get; init; }

    public string? Origin { get; init; }

    /// <summary>The id of the rule's first counter statement (null without one).</summary>
    public ulong? CounterId => Statements.OfType<CounterStatement>().Select(c => (ulong?)c.Id).FirstOrDefault();

    /// <summary>The counter ids of every counter statement, in order, and of the counters an object map may name.</summary>
    public IEnumerable<ulong> CounterIds => AllStatements.OfType<CounterStatement>().Select(c => c.Id);

    /// <summary>The statements, each object map's followed by the objects it may run (their state is the rule's too).</summary>
    public IEnumerable<Statement> AllStatements => Statements.SelectMany(s => s is ObjectMapStatement o ? [s, .. o.Objects] : new[] { s });

    /// <summary>Matcher shapes, statement kinds and verdict kind: same-shape rules are candidates for one map lookup.</summary>
    public RuleShape Shape => new(Matchers.Select(m => m.Shape).ToValueList(),
        Statements.Select(s => s.GetType()).ToValueList(), Verdict.GetType());

    public override string ToString()
    {
        var parts = Matchers.Select(m => m.ToString()).ToList();
        parts.AddRange(Statements.Select(s => s.ToString()!));
        parts.Add(Verdict.ToString()!);
        return string.Join(" ", parts);
    }
}

public sealed record RuleShape(ValueList<MatcherShape> Matchers, ValueList<Type> Statements, Type VerdictKind);
