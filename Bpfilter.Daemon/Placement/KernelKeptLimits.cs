using Nft.Bytecode;
using Nft.Kernel;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// The named limits the kernel's copy keeps while no kernel-placed rule names them. nf_tables keeps a limit object's bucket
/// while its table holds it, named or not, and a rule naming it again goes on from there; the kernel copy cannot be given a
/// bucket (NEWOBJ carries rate, unit, burst and flags only: a new one starts full), so a limit object it holds stays in it for
/// as long as the user's table holds the object, unless a chain placed in BPF names it (BPF takes the limit then, once
/// <see cref="KernelLimitIdle"/> knows the kernel's bucket full). Unnamed, no packet reaches it: its idle time only grows.
/// </summary>
public static class KernelKeptLimits
{
    /// <summary>The limit objects <paramref name="placed"/> (the kernel's copy as committed) hold.</summary>
    public static HashSet<(byte Family, string Table, string Name)> HeldBy(IEnumerable<SourceTable> placed) =>
        placed.SelectMany(t => (t.Objects ?? []).Where(o => o.ObjectType == NftObjectType.Limit && o.Name != null).Select(o => (t.Family, t.Name, o.Name!)))
            .ToHashSet();

    /// <summary>
    /// <paramref name="subset"/> (table <paramref name="table"/>'s kernel part, null when the kernel runs none of its chains)
    /// with the limit objects of <paramref name="held"/> the table still holds and no chain of <paramref name="bpfReach"/> reaches;
    /// null when there is nothing for the kernel.
    /// </summary>
    public static SourceTable? Into(SourceTable table, SourceTable? subset, IReadOnlySet<(byte, string, string)> held, IEnumerable<SourceTable> bpfReach)
    {
        if (held.Count == 0 || table.Objects is not { Count: > 0 } objects) return subset;
        var reach = bpfReach.ToList();
        // an object map BPF runs may name any limit of the table (an element-only change can name another)
        if (reach.Any(r => r.Sets.Any(s => s.Set.ObjType == (uint)NftObjectType.Limit))) return subset;
        var inSubset = subset?.Objects?.Select(o => (o.Type, o.Name)).ToHashSet() ?? [];
        var kept = objects.Where(o => o.ObjectType == NftObjectType.Limit && o.Name != null && held.Contains((table.Family, table.Name, o.Name))
            && !inSubset.Contains((o.Type, o.Name)) && !reach.Any(r => r.Objects?.Any(x => x.ObjectType == NftObjectType.Limit && x.Name == o.Name) == true))
            .Select(o => o.Name!).ToHashSet(StringComparer.Ordinal);
        if (kept.Count == 0) return subset;
        var empty = subset ?? table with { Chains = [], Sets = [], Objects = [], Flowtables = table.Flowtables == null ? null : [] };
        // in the table's order
        return empty with { Objects = objects.Where(o => o.ObjectType == NftObjectType.Limit && kept.Contains(o.Name!) || inSubset.Contains((o.Type, o.Name))).ToList() };
    }
}
