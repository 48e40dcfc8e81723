namespace Bpfilter.Backend.Ir;

/// <summary>
/// `classify`: a run of rules evaluated as one first-match classification over a few fields (a
/// lowering pass builds it, see <c>Lowering/Classification</c>). <see cref="Fields"/> are the
/// dimensions (each read once per packet); every rule admits, per dimension, a union of value
/// intervals or (null) any value, including a packet that lacks the field. The first rule whose every
/// dimension admits the packet's value wins: its statements (one counter at most) run, then its
/// verdict (accept or drop). No rule admits the packet: continue with the next rule.
/// </summary>
public sealed record ClassifierVerdict(ValueList<Field> Fields, ValueList<ClassifierRule> Rules) : Verdict
{
    /// <summary>
    /// The run's fields before 32-bit ones were read as two halves (<c>Lowering/ClassifierFieldSplit</c>), in the order
    /// the rules first use them: what a rule appended to the run is checked against (<c>Enforcement/ClassifiedRunEdit</c>).
    /// </summary>
    public ValueList<Field> Dimensions { get; init; } = ValueList<Field>.Empty;

    public override string ToString() => $"classify {string.Join(" . ", Fields)} ({Rules.Count} rules)";
}

/// <summary>
/// One rule of a <see cref="ClassifierVerdict"/>: per dimension the admitted values (null: no matcher
/// on that field, every packet is admitted; an empty list: nothing), then statements and verdict.
/// </summary>
public sealed record ClassifierRule(ValueList<ValueList<Interval>?> Admits, ValueList<Statement> Statements, Verdict Verdict)
{
    /// <summary>Where the rule came from, for errors.</summary>
    public string? Origin { get; init; }
}

/// <summary>Inclusive interval of unsigned field values (fields of at most 64 bits).</summary>
public readonly record struct Interval(ulong From, ulong To)
{
    public override string ToString() => From == To ? $"{From}" : $"{From}-{To}";
}
