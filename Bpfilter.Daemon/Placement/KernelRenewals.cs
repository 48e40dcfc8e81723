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
}
