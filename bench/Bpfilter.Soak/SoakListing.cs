using System.Text.RegularExpressions;

namespace Bpfilter.Soak;

/// <summary>A rule's counter as `nft list` prints it.</summary>
public sealed record SoakCounter(long Packets, long Bytes);

/// <summary>What the soak reads from `nft -a list ruleset`: rules by their comment "rN" (handle, counter) and the listing without counter values.</summary>
public static partial class SoakListing
{
    /// <summary>The listing with every counter's values replaced by '?' (the oracle's kernel sees no traffic).</summary>
    public static string WithoutCounters(string listing) => CounterValues().Replace(listing, "counter packets ? bytes ?");

    public static Dictionary<int, long> Handles(string listing) =>
        Rule().Matches(listing).ToDictionary(m => int.Parse(m.Groups["id"].Value), m => long.Parse(m.Groups["handle"].Value));

    public static Dictionary<int, SoakCounter> Counters(string listing) =>
        Rule().Matches(listing).Where(m => m.Groups["packets"].Success)
            .ToDictionary(m => int.Parse(m.Groups["id"].Value), m => new SoakCounter(long.Parse(m.Groups["packets"].Value), long.Parse(m.Groups["bytes"].Value)));

    /// <summary>The counter of the fixed table's rule (comment "fixed").</summary>
    public static SoakCounter? Fixed(string listing) =>
        FixedRule().Match(listing) is { Success: true } m ? new SoakCounter(long.Parse(m.Groups[1].Value), long.Parse(m.Groups[2].Value)) : null;

    [GeneratedRegex(@"counter packets \d+ bytes \d+")]
    private static partial Regex CounterValues();

    [GeneratedRegex(@"(?:counter packets (?<packets>\d+) bytes (?<bytes>\d+).*)?comment ""r(?<id>\d+)"" # handle (?<handle>\d+)$", RegexOptions.Multiline)]
    private static partial Regex Rule();

    [GeneratedRegex(@"counter packets (\d+) bytes (\d+) drop comment ""fixed""")]
    private static partial Regex FixedRule();
}
