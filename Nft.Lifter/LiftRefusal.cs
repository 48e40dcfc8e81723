namespace Nft.Lifter;

/// <summary>
/// Why something could not be lifted, and where: the table, the chain (null for a table-level
/// refusal), the rule handle and the index of the offending expression in that rule's
/// NFTA_RULE_EXPRESSIONS (or -1), and the set when a set's elements are refused.
/// </summary>
public sealed record LiftRefusal(byte Family, string Table, string? Chain, ulong? RuleHandle, int ExpressionIndex, string Reason, string? Set = null)
{
    /// <summary>The rule refused, when the refusal is about one rule.</summary>
    public RuleId? Rule => Chain != null && RuleHandle is { } h ? new RuleId(new ChainId(Family, Table, Chain), h) : null;

    /// <summary>Where and why, e.g. "table ip t chain in rule 3: expression 'ct' ...".</summary>
    public string Message => LiftException.Describe(Family, Table, Chain, RuleHandle, Set, Reason);

    internal static LiftRefusal Of(LiftException e) => new(e.Family, e.Table, e.Chain, e.RuleHandle, e.ExpressionIndex, e.Reason, e.Set);

    public LiftException ToException() => new(Family, Table, Chain, RuleHandle, ExpressionIndex, Reason, Set);
}
