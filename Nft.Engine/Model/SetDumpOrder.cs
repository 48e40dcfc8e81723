using Nft.Bytecode;

namespace Nft.Engine.Model;

/// <summary>
/// The order in which the kernel's set backend dumps elements. nft sorts what it lists, but its sort
/// ties where values print alike (a bitmask element sorts by its lowest flag: `syn` and `syn | psh`),
/// and ties keep the dump's order, so the listing shows the backend. nft_select_set_ops picks the
/// bitmap (nft_set_bitmap: keys of at most 2 bytes, no interval, map, timeout, object or eval flag,
/// no element statements; O(1) lookup and space wins under the default performance policy), which
/// dumps in insertion order; pipapo (concatenated intervals) too; the rbtree (intervals) from the
/// highest key down. Hash sets dump in the order of a randomly seeded table, which nothing can
/// reproduce: they keep key order (and policy memory, where the choice depends on sizes, too).
/// </summary>
internal static class SetDumpOrder
{
    const uint BitmapExcludes = (uint)(NftSetFlags.Interval | NftSetFlags.Map | NftSetFlags.Timeout | NftSetFlags.Object | NftSetFlags.Eval);

    public static bool IsBitmap(SetRecord set) =>
        set.KeyLen <= 2 && (set.Flags & BitmapExcludes) == 0 && !set.HasStatements && set.Set.Timeout is null or 0
        && set.Set.Policy is null or (uint)NftSetPolicy.Performance;

    /// <summary>Puts key-ordered elements in the backend's dump order.</summary>
    public static void Apply(SetRecord set, List<ElementRecord> live)
    {
        if (set.IsInterval && set.ConcatFieldLens != null || IsBitmap(set))
        {
            // stable: elements read back from the kernel carry no sequence and keep its order
            var byInsertion = live.OrderBy(e => e.InsertSeq).ToList();
            live.Clear();
            live.AddRange(byInsertion);
        }
        else if (set.IsInterval)
            live.Reverse();
    }
}
