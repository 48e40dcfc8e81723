using System.Text.RegularExpressions;

namespace Bpfilter.Integration.Tests.Differential;

/// <summary>
/// Map elements in a fixed order, for comparing listings. The kernel keeps maps with exact keys in
/// a hash backend seeded at random per set (nft_set_hash; the bitmap backend takes no maps), and
/// nft's sort of the listing ties on bitmask keys (`tcp flags vmap { syn | ack : ..., syn : ... }`
/// sorts both by syn), so such a map lists differently on two kernels given the same ruleset
/// (protocol corpus `set-bitmap-order` notes it): that order carries nothing to compare. Sets keep
/// their order: their backends (bitmap, rbtree, pipapo) dump deterministically.
/// </summary>
public static partial class HashMapOrder
{
    [GeneratedRegex(@"\{([^{}]*\s:\s[^{}]*)\}")]
    private static partial Regex MapElements();

    public static string Normalize(string listing) =>
        MapElements().Replace(listing, m =>
            "{ " + string.Join(", ", m.Groups[1].Value.Split(',').Select(e => Regex.Replace(e.Trim(), @"\s+", " ")).Order(StringComparer.Ordinal)) + " }");
}
