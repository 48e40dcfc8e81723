namespace Nft.Engine.Model;

/// <summary>A named stateful object (counter, quota, limit) with its NFTA_OBJ_DATA attributes as the kernel dumps them.</summary>
public sealed record ObjectRecord(string Name, uint Type, ulong Handle, byte[] Data, byte[]? UserData, CounterCell? Counter);
