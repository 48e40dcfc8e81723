namespace Bpfilter.Backend.Ir;

/// <summary>What a limit counts: packets, or bytes (`limit rate 1 mbytes/second`).</summary>
public enum LimitType { Packets, Bytes }

/// <summary>
/// A token bucket, as nft_limit: Rate packets (or bytes) per Per, with a burst of Burst. Without
/// Over, packets within the rate pass on and the others break to the next rule; with Over
/// (`limit rate over ...`) the reverse. The bucket state is per rule, shared by all CPUs.
/// Per is any whole number of seconds, as the kernel takes it (nft writes 1 s, 1 min, 1 h, 1 d, 1 week).
/// </summary>
public sealed record LimitStatement(ulong Rate, TimeSpan Per, uint Burst, LimitType Type = LimitType.Packets, bool Over = false) : Statement
{
    public override bool MayBreak => true;

    public override string ToString() =>
        $"limit rate {(Over ? "over " : "")}{Rate}{(Type == LimitType.Bytes ? " bytes" : "")}/{UnitName(Per)}" +
        (Burst != 0 ? $" burst {Burst}{(Type == LimitType.Bytes ? " bytes" : " packets")}" : "");

    private static string UnitName(TimeSpan per) => per.TotalSeconds switch
    {
        1 => "second",
        60 => "minute",
        3600 => "hour",
        86400 => "day",
        604800 => "week",
        var s => $"{s}s",
    };
}
