namespace Nft.Bytecode.Wire;

/// <summary>
/// One <see cref="AttributeLayout"/> instance per plain layout (nest type and attribute raw types, every attribute
/// modelled, nothing verbatim): a ruleset of 10,000 rules repeats a few dozen of them, and building one per decoded
/// nest was much of the garbage a big `nft -f` made. Layouts are immutable, so sharing changes no encoding.
/// </summary>
static class SharedLayouts
{
    /// <summary>Longest attribute list shared: its key packs the count, the nest type and the raw types into 128 bits.</summary>
    public const int MaxEntries = 6;

    /// <summary>Distinct layouts kept at most (what arrives is untrusted): past it, layouts are built per nest again.</summary>
    const int Capacity = 4096;

    static readonly Dictionary<UInt128, AttributeLayout> Layouts = [];

    public static AttributeLayout Get(ushort nestRaw, ReadOnlySpan<ushort> raws)
    {
        UInt128 key = ((UInt128)(uint)raws.Length << 16) | nestRaw;
        foreach (var r in raws) key = (key << 16) | r;
        lock (Layouts)
        {
            if (Layouts.TryGetValue(key, out var shared)) return shared;
            var entries = new LayoutEntry[raws.Length];
            for (int i = 0; i < raws.Length; i++) entries[i] = new LayoutEntry(raws[i], null);
            var layout = new AttributeLayout(nestRaw, entries);
            if (Layouts.Count < Capacity) Layouts[key] = layout;
            return layout;
        }
    }
}
