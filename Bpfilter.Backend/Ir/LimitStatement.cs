namespace Bpfilter.Backend.Ir;

/// <summary>What a limit counts: packets, or bytes (`limit rate 1 mbytes/second`).</summary>
public enum LimitType { Packets, Bytes }

/// <summary>
/// A token bucket, as nft_limit: Rate packets (or bytes) per Per, with a burst of Burst (the effective
/// one: nft_limit's default of 5 for a packet limit sent without one). Without Over, packets within the
/// rate pass on and the others break to the next rule; with Over (`limit rate over ...`) the reverse.
/// The bucket state {tokens, last} (in nanoseconds) is StateSlot's, shared by all CPUs and by every rule
/// naming the same limit object. Per is any whole number of seconds, as the kernel takes it.
/// </summary>
public sealed record LimitStatement(ulong Rate, TimeSpan Per, uint Burst, LimitType Type = LimitType.Packets, bool Over = false) : Statement
{
    public ulong StateSlot { get; init; }

    public override bool MayBreak => true;

    /// <summary>Per in nanoseconds (nft_limit's nsecs).</summary>
    public ulong Nsecs => (ulong)(Per.Ticks / TimeSpan.TicksPerSecond) * 1_000_000_000UL;

    /// <summary>The bucket's size in nanoseconds, and what a new bucket starts with (nft_limit_init).</summary>
    public ulong Max => TokensMax(Rate, Nsecs, Burst, Type == LimitType.Packets)
        ?? throw new InvalidOperationException($"{this}: out of nft_limit's range");

    /// <summary>What one packet costs in nanoseconds of a packet limit (nft_limit_pkts_init).</summary>
    public ulong PacketCost => Nsecs / Rate;

    /// <summary>
    /// nft_limit_init's tokens_max, null where it overflows (the kernel refuses those): packets,
    /// nsecs / rate * burst; bytes, nsecs * (rate + burst) / rate.
    /// </summary>
    public static ulong? TokensMax(ulong rate, ulong nsecs, uint burst, bool packets)
    {
        try
        {
            return packets ? checked(nsecs / rate * burst) : checked(nsecs * (rate + burst)) / rate;
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    public override string ToString() =>
        $"limit rate {(Over ? "over " : "")}{Rate}{(Type == LimitType.Bytes ? " bytes" : "")}/{UnitName(Per)}" +
        (Burst != 0 ? $" burst {Burst}{(Type == LimitType.Bytes ? " bytes" : " packets")}" : "") + $" #{StateSlot}";

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
