namespace Bpfilter.Backend.Ir;

/// <summary>The period a limit's rate is counted over (nft's `/second` ... `/week`).</summary>
public enum RateUnit { Second, Minute, Hour, Day, Week }

/// <summary>What a limit counts: packets, or bytes (`limit rate 1 mbytes/second`).</summary>
public enum LimitType { Packets, Bytes }

/// <summary>
/// A token bucket, as nft_limit: Rate per Unit with a burst of Burst packets (or bytes). Without
/// Over, packets within the rate pass on and the others break to the next rule; with Over
/// (`limit rate over ...`) the reverse. The bucket state is per rule, shared by all CPUs.
/// </summary>
public sealed record LimitStatement(ulong Rate, RateUnit Unit, uint Burst, LimitType Type = LimitType.Packets, bool Over = false) : Statement
{
    public override bool MayBreak => true;

    public override string ToString() =>
        $"limit rate {(Over ? "over " : "")}{Rate}{(Type == LimitType.Bytes ? " bytes" : "")}/{Unit.ToString().ToLowerInvariant()}" +
        (Burst != 0 ? $" burst {Burst}{(Type == LimitType.Bytes ? " bytes" : " packets")}" : "");
}
