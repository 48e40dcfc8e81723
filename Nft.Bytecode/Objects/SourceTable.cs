
namespace Nft.Bytecode.Objects;

/// <summary>
/// One nf_tables table as the lifter reads it: the typed objects of Nft.Bytecode, rules in chain
/// order, each set with its elements. Rules need NFTA_RULE_HANDLE (counters and errors name it).
/// </summary>
public sealed record SourceTable(
    Table Table,
    IReadOnlyList<SourceChain> Chains,
    IReadOnlyList<SourceSet> Sets,
    IReadOnlyList<NftObject>? Objects = null,
    IReadOnlyList<Flowtable>? Flowtables = null)
{
    public byte Family => Table.Family;
    public string Name => Table.Name ?? "";

    public SourceSet? FindSet(string name) => Sets.FirstOrDefault(s => s.Set.Name == name);
    public SourceChain? FindChain(string name) => Chains.FirstOrDefault(c => c.Chain.Name == name);
}

/// <summary>A chain and its rules in evaluation order.</summary>
public sealed record SourceChain(Chain Chain, IReadOnlyList<Rule> Rules)
{
    public string Name => Chain.Name ?? "";
    public bool IsBase => Chain.Hook != null;
}

/// <summary>A set or map and its elements (as NEWSETELEM or a GETSETELEM dump carries them).</summary>
public sealed record SourceSet(Set Set, IReadOnlyList<SetElement> Elements)
{
    public string Name => Set.Name ?? "";
}
