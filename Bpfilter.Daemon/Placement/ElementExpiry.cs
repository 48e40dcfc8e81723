using Nft.Engine;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// The expiry of set elements as the kernel's nf_tables is sent it. The engine keeps an element's expiry as a deadline in
/// milliseconds on the kernel's jiffies clock; NFTA_SET_ELEM_EXPIRATION is the time left. A set the placement creates in
/// the kernel (its chains moved there, its table placed anew) is given each element's time left, so an element with a
/// timeout expires when the kernel's own set, where nothing moves, expires it, instead of starting its timeout again.
/// </summary>
internal static class ElementExpiry
{
    /// <summary><paramref name="tables"/> with every element's deadline as the time left at <paramref name="nowMs"/> (at least 1 ms); itself when no element expires.</summary>
    public static IReadOnlyList<SourceTable> TimeLeft(IReadOnlyList<SourceTable> tables, long nowMs)
    {
        static bool Expires(SourceSet s) => s.Elements.Any(e => e.Expiration != null);
        if (!tables.Any(t => t.Sets.Any(Expires))) return tables;
        return tables.Select(t => !t.Sets.Any(Expires) ? t : t with
        {
            Sets = t.Sets.Select(s => !Expires(s) ? s : s with
            {
                Elements = s.Elements.Select(e => e.Expiration is ulong at ? e with { Expiration = (ulong)Math.Max(1, (long)Math.Min(at, long.MaxValue) - nowMs) } : e).ToList(),
            }).ToList(),
        }).ToList();
    }

    /// <summary><paramref name="tables"/> without expiry (the kernel gives each element its whole timeout): when the kernel's clock cannot be read.</summary>
    public static IReadOnlyList<SourceTable> None(IReadOnlyList<SourceTable> tables) =>
        !tables.Any(t => t.Sets.Any(s => s.Elements.Any(e => e.Expiration != null))) ? tables
        : tables.Select(t => t with { Sets = t.Sets.Select(s => s with { Elements = s.Elements.Select(e => e with { Expiration = null }).ToList() }).ToList() }).ToList();
}
