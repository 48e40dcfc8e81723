namespace Nft.Lifter;

/// <summary>An nf_tables chain, named as the kernel names it: NFPROTO_* family, table, chain.</summary>
public sealed record ChainId(byte Family, string Table, string Chain)
{
    public override string ToString() => $"table {FamilyNames.Of(Family)} {Table} chain {Chain}";
}

/// <summary>One rule of a chain, by its handle.</summary>
public sealed record RuleId(ChainId Chain, ulong Handle)
{
    public override string ToString() => $"{Chain} rule {Handle}";
}
