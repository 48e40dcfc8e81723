namespace Nft.Lifter;

/// <summary>Where the lifter is: table, chain and rule, for refusals that name them.</summary>
internal sealed class RuleContext
{
    public RuleContext(TableContext table, string chain, ulong handle)
    {
        Table = table;
        Chain = chain;
        Handle = handle;
    }

    public TableContext Table { get; }
    public string Chain { get; }
    public ulong Handle { get; }

    public LiftException Refuse(int index, string reason) =>
        new(Table.Family, Table.Name, Chain, Handle, index, reason);
}
