namespace Bpfilter.Backend.Ir;

/// <summary>
/// nft_objref with a map (`counter name ip saddr map { 10.0.0.1 : "c1" }`): the packet's Key is looked
/// up in object map Map, whose elements each carry the statement of the stateful object they name
/// (<see cref="SetElement.Statements"/>); a miss breaks to the next rule (NFT_BREAK), a hit runs that
/// object's statement (counter, quota or limit, which may break in turn). Objects: every object an
/// element may name (the table's objects of the map's type), in the order the program dispatches on,
/// so that an element-only change naming another of them is a map update.
/// </summary>
public sealed record ObjectMapStatement(MatchKey Key, string Map, ValueList<Statement> Objects) : Statement
{
    public override bool MayBreak => true;

    public override string ToString() => $"{Key} map @{Map}";
}
