using Nft.Bytecode.Objects;

namespace Nft.Kernel;

// Same shapes as Nft.Lifter's SourceTable/SourceChain/SourceSet, which are moving to Nft.Bytecode.Objects:
// the integrator swaps these for the shared ones.

/// <summary>A table with everything in it: chains with their rules in order, sets with their elements, named objects, flowtables.</summary>
public sealed record SourceTable(Table Table, IReadOnlyList<SourceChain> Chains, IReadOnlyList<SourceSet> Sets,
    IReadOnlyList<NftObject>? Objects = null, IReadOnlyList<Flowtable>? Flowtables = null);

/// <summary>A chain and its rules in order.</summary>
public sealed record SourceChain(Chain Chain, IReadOnlyList<Rule> Rules);

/// <summary>A set (named or anonymous) and its elements.</summary>
public sealed record SourceSet(Set Set, IReadOnlyList<SetElement> Elements);
