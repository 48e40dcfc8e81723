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
}
