using System.Text.RegularExpressions;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// `nft list ruleset` as the sides compare it. The one thing in a listing that is a clock reading,
/// not state, is how long a set element with a timeout has left (`expires 3h59m58s740ms`): it
/// depends on when the listing was taken. It is compared to the minute (seconds and milliseconds
/// cut), which no case's timeouts make ambiguous (they are whole minutes or more, and a case lasts
/// seconds). Everything else is compared byte for byte.
/// </summary>
public static partial class Listing
{
    [GeneratedRegex(@"\bexpires ((?:\d+d)?(?:\d+h)?(?:\d+m(?!s))?)(?:\d+s)?(?:\d+ms)?")]
    private static partial Regex Expires();

    public static string Comparable(string listing) =>
        Expires().Replace(listing, m => m.Groups[1].Value.Length > 0 ? $"expires {m.Groups[1].Value}~" : "expires <1m~");
}
