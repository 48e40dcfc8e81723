using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Engine;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// A named object of a kernel-placed table as nf_tables keys it (nft_obj_lookup): table, type and name, so a counter
/// and a quota by one name are two objects, each with its own count, reset and carried state.
/// </summary>
internal readonly record struct KernelObjectKey(byte Family, string Table, NftObjectType Type, string Name)
{
    /// <summary>The object <paramref name="c"/> names (its object name set).</summary>
    public static KernelObjectKey Of(CounterRef c) => new(c.Family, c.Table, c.ObjectType, c.ObjectName!);

    /// <summary>Object <paramref name="o"/> of table <paramref name="t"/>.</summary>
    public static KernelObjectKey Of(SourceTable t, NftObject o) => new(t.Family, t.Name, o.ObjectType, o.Name ?? "");

    /// <summary>The named objects <paramref name="tables"/> hold.</summary>
    public static HashSet<KernelObjectKey> HeldBy(IEnumerable<SourceTable> tables) =>
        tables.SelectMany(t => (t.Objects ?? []).Select(o => Of(t, o))).ToHashSet();
}
