using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>
/// What a transaction deleted and created anew under the same names: tables deleted and added back, sets and named
/// objects deleted and added back alone, elements deleted and added back (or re-added once expired). The kernel's
/// nf_tables holds other objects then, whose counters, quotas and limits start from what the transaction gave them;
/// the placement deletes and adds them again in its own batch, which a diff of their content alone would keep.
/// </summary>
public sealed record KernelRenewal(
    IReadOnlySet<TableKey> Tables,
    IReadOnlySet<(TableKey Table, string Set)> Sets,
    IReadOnlySet<(TableKey Table, uint Type, string Name)> Objects,
    IReadOnlyList<(TableKey Table, string Set, SetElement Element)> Elements)
{
    public static readonly KernelRenewal None = new(new HashSet<TableKey>(), new HashSet<(TableKey, string)>(),
        new HashSet<(TableKey, uint, string)>(), []);

    /// <summary>The renewed elements of one set of a kept table.</summary>
    public IEnumerable<SetElement> ElementsOf(TableKey table, string set) =>
        Elements.Where(e => e.Table == table && e.Set == set).Select(e => e.Element);
}
