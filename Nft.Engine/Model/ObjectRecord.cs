using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// A named stateful object (counter, quota, limit...): the Nft.Bytecode object as the kernel stores it
/// (name, type, handle, user data, and its NFTA_OBJ_DATA as the expression of the same kind in dump
/// form; no table or use count), and the runtime totals of counters and quotas.
/// </summary>
public sealed record ObjectRecord(NftObject Object, CounterCell? Counter)
{
    public string Name => Object.Name!;
    public uint Type => Object.Type ?? 0;
    public ulong Handle => Object.Handle ?? 0;
}
