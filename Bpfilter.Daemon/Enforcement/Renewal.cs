using Bpfilter.Backend.Enforcement;
using Nft.Bytecode;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The slots of what a batch deleted and created anew by the same names (<see cref="RenewedSlots"/>): the front-end
/// names counters, quotas and limits by table, chain, rule handle, object name and element key, all of which the new
/// objects share with the old ones (a re-created table hands out the same rule handles again), while the kernel's new
/// objects count, consume and spend from what the batch gave them.
/// </summary>
static class Renewal
{
    public static RenewedSlots Of(LiftResult lift, RulesetChange change)
    {
        if (change.RecreatedTables.Count + change.RecreatedObjects.Count + change.RecreatedSets.Count + change.RenewedElements.Count == 0)
            return RenewedSlots.None;
        var tables = change.RecreatedTables.ToHashSet();
        var objects = change.RecreatedObjects.ToHashSet();
        var sets = change.RecreatedSets.ToHashSet();
        // an element's counter and states are named by its set and its key in hex (CounterKey.Element)
        var elements = change.RenewedElements
            .Select(e => (e.Family, e.Table, e.Set, CounterKey.Element(e.Family, e.Table, e.Set, e.Element.Key, e.Element.KeyEnd).Object!)).ToHashSet();
        // a recreated set's elements are all new ones (the kernel's new set holds only the batch's elements)
        bool Counter(CounterKey k) => tables.Contains((k.Family, k.Table))
            || k.Object is { } o && (k.Chain.Length == 0 ? objects.Contains((k.Family, k.Table, o, (uint)NftObjectType.Counter))
                : sets.Contains((k.Family, k.Table, k.Chain)) || elements.Contains((k.Family, k.Table, k.Chain, o)));
        bool Stateful(StatefulKey k, NftObjectType type) => tables.Contains((k.Family, k.Table))
            || k.Object is { } o && objects.Contains((k.Family, k.Table, o, (uint)type))
            || k.ElementKey is { } e && k.Chain is { } set && (sets.Contains((k.Family, k.Table, set)) || elements.Contains((k.Family, k.Table, set, e)));
        return new RenewedSlots(
            lift.Counters.Where(c => Counter(c.Key)).Select(c => c.Value).ToHashSet(),
            lift.Quotas.Where(q => Stateful(q.Key, NftObjectType.Quota)).Select(q => q.Value).ToHashSet(),
            lift.Limits.Where(l => Stateful(l.Key, NftObjectType.Limit)).Select(l => l.Value).ToHashSet());
    }
}
