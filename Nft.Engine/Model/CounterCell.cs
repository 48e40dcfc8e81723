namespace Nft.Engine.Model;

/// <summary>
/// Runtime packet/byte totals of a counter expression or named counter/quota object. Counters are
/// state, not configuration: they change without a transaction, so they sit in a mutable cell that the
/// immutable records point to. The backend adds its own totals on top when it reads them back.
/// </summary>
public sealed class CounterCell
{
    public ulong Packets;
    public ulong Bytes;

    public CounterCell(ulong packets = 0, ulong bytes = 0)
    {
        Packets = packets;
        Bytes = bytes;
    }

    /// <summary>The totals nft lists: this cell plus what the data plane counted (<paramref name="live"/>, null for none).</summary>
    public CounterValue Plus(CounterValue? live) => new(Packets + (live?.Packets ?? 0), Bytes + (live?.Bytes ?? 0));
}
