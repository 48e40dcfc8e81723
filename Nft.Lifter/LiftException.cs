using Nft.Netlink;

namespace Nft.Lifter;

/// <summary>
/// A construct the lifter cannot prove equivalent in the backend's IR. Carries where it sits
/// (table, chain, rule handle, index of the offending expression within the rule) so the daemon
/// can turn it into an nf_tables error whose extack offset points at that NFTA_LIST_ELEM, and nft
/// underlines the statement. Errno is EOPNOTSUPP, as the kernel answers unsupported features.
/// </summary>
public sealed class LiftException : NetlinkException
{
    /// <summary>NFPROTO_* family of the table.</summary>
    public byte Family { get; }
    public string Table { get; }
    /// <summary>Null when the table itself (or a set of it) is refused.</summary>
    public string? Chain { get; }
    /// <summary>Null when a chain, set or table is refused rather than a rule.</summary>
    public ulong? RuleHandle { get; }
    /// <summary>Index of the offending expression in the rule's NFTA_RULE_EXPRESSIONS, or -1.</summary>
    public int ExpressionIndex { get; }
    /// <summary>The set involved, when the refusal is about a set or its elements.</summary>
    public string? Set { get; }
    /// <summary>The reason alone, without the location prefix.</summary>
    public string Reason { get; }

    public LiftException(byte family, string table, string? chain, ulong? ruleHandle, int expressionIndex, string reason, string? set = null)
        : base(Nft.Netlink.Errno.EOPNOTSUPP, Describe(family, table, chain, ruleHandle, set, reason))
    {
        Family = family;
        Table = table;
        Chain = chain;
        RuleHandle = ruleHandle;
        ExpressionIndex = expressionIndex;
        Set = set;
        Reason = reason;
    }

    internal static string Describe(byte family, string table, string? chain, ulong? handle, string? set, string reason)
    {
        var where = $"table {FamilyNames.Of(family)} {table}";
        if (chain != null) where += $" chain {chain}";
        if (handle != null) where += $" rule {handle}";
        if (set != null && chain == null) where += $" set {set}";
        return $"{where}: {reason}";
    }
}
