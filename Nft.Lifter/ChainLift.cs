using Bpfilter.Backend.Ir;

namespace Nft.Lifter;

/// <summary>
/// What lifting one chain gave: for a base chain, its IR base chains (one per device of a netdev
/// chain) with every regular chain and set it reaches; for a regular chain no base chain reaches,
/// the chain alone. Or the refusal that stopped it, naming the rule and expression.
/// </summary>
public abstract record ChainLift(ChainId Chain)
{
    public sealed record Lifted(ChainId Chain, IReadOnlyList<BaseChain> BaseChains, IReadOnlyList<Chain> Reached,
        IReadOnlyList<Set> Sets, IReadOnlyList<RuleListing> Listing) : ChainLift(Chain);

    public sealed record Refused(ChainId Chain, LiftRefusal Refusal) : ChainLift(Chain);
}
