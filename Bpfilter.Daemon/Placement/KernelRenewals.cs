using Nft.Bytecode;
using Nft.Engine;
using Nft.Kernel;

namespace Bpfilter.Daemon.Placement;

/// <summary>What a transaction deleted and created anew (<see cref="RulesetChange"/>), in the kernel placement's terms.</summary>
static class KernelRenewals
{
    public static KernelRenewal Of(RulesetChange change) =>
        change.RecreatedTables.Count + change.RecreatedSets.Count + change.RecreatedObjects.Count + change.RenewedElements.Count == 0
            ? KernelRenewal.None
            : new KernelRenewal(
                change.RecreatedTables.Select(t => new TableKey(t.Family, t.Table)).ToHashSet(),
                change.RecreatedSets.Select(s => (new TableKey(s.Family, s.Table), s.Set)).ToHashSet(),
                change.RecreatedObjects.Select(o => (new TableKey(o.Family, o.Table), o.Type, o.Object)).ToHashSet(),
                change.RenewedElements.Select(e => (new TableKey(e.Family, e.Table), e.Set, e.Element)).ToList());

    /// <summary>Whether <paramref name="renewed"/> recreated the table of the counter or quota <paramref name="c"/> names: its state is new.</summary>
    public static bool Renews(this KernelRenewal renewed, CounterRef c) => renewed.Tables.Contains(new TableKey(c.Family, c.Table));

    /// <summary>Whether <paramref name="renewed"/> renewed what <paramref name="c"/> names: its table, or itself when it names an object of <paramref name="type"/>.</summary>
    public static bool Renews(this KernelRenewal renewed, CounterRef c, NftObjectType type) =>
        renewed.Renews(c) || c.ObjectName is { } name && renewed.Objects.Contains((new TableKey(c.Family, c.Table), (uint)type, name));
}
