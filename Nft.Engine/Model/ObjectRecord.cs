using Nft.Bytecode.Expressions;

namespace Nft.Engine.Model;

/// <summary>
/// A named stateful object (counter, quota, limit...). <see cref="Data"/> is its NFTA_OBJ_DATA as the
/// expression of the same kind, in dump form; <see cref="Counter"/> holds the runtime totals of counters and quotas.
/// </summary>
public sealed record ObjectRecord(string Name, uint Type, ulong Handle, Expression Data, byte[]? UserData, CounterCell? Counter);
