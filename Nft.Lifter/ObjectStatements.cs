using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Lifter;

/// <summary>
/// A named stateful object (`counter name "c"`, `quota name "q"`, `limit name "l"`, or one an object map's
/// element names) as the IR statement every rule reaching it runs: its state is in one slot per object.
/// </summary>
internal static class ObjectStatements
{
    public static Statement Of(TableContext table, NftObject obj, Func<string, Exception> refuse)
    {
        var name = obj.Name!;
        switch (obj.ObjectType, obj.Data)
        {
            case (NftObjectType.Counter, CounterExpr):
                // a named counter counts like a rule's own counter, in a slot every rule naming it shares
                return new CounterStatement(table.Counters.GetOrAdd(CounterKey.Named(table.Family, table.Name, name)));
            case (NftObjectType.Quota, QuotaExpr q):
                return QuotaStatements.Lift(q, table.Counters.Quotas.GetOrAdd(StatefulKey.Named(table.Family, table.Name, name)), refuse);
            case (NftObjectType.Limit, LimitExpr l):
                return LimitStatements.Lift(l, table.Counters.Limits.GetOrAdd(StatefulKey.Named(table.Family, table.Name, name)), refuse);
            default:
                throw refuse($"expression 'objref' ({NftObject.KindOf(obj.Type ?? 0)} object '{name}') is not supported by bpfilter-nft");
        }
    }

    /// <summary>The object of the table with this name and type, or null.</summary>
    public static NftObject? Find(TableContext table, string name, uint? type) =>
        table.Source.Objects?.FirstOrDefault(x => x.Name == name && x.Type == type);

    /// <summary>
    /// Every object an object map of <paramref name="type"/> may name (an element can name any object of
    /// the map's type in the table), by name: the dispatch order, stable under element changes.
    /// </summary>
    public static IEnumerable<NftObject> OfType(TableContext table, uint? type) =>
        (table.Source.Objects ?? []).Where(x => x.Type == type && x.Name != null).OrderBy(x => x.Name, StringComparer.Ordinal);
}
