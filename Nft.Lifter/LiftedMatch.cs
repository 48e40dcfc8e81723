using Bpfilter.Backend.Ir;

namespace Nft.Lifter;

/// <summary>
/// A match nft may have added as a dependency of a later header match (`meta l4proto tcp` before
/// `tcp dport`): removable when a later field of one of <see cref="ImpliedBy"/> implies it.
/// Not <see cref="Expressible"/>: the IR has no such matcher, so it must be implied or the rule is refused.
/// </summary>
internal sealed record Dependency(string What, HeaderProtocol[] ImpliedBy, bool Expressible = true);

/// <summary>One folded match with the expression that produced it (Index) and its dependency role, if any.</summary>
internal sealed record LiftedMatch(Matcher? Matcher, int Index, Dependency? Dependency);
