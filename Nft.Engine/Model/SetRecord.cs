using System.Collections.Immutable;

namespace Nft.Engine.Model;

/// <summary>A named or anonymous set or map, with its elements ordered by key.</summary>
public sealed record SetRecord(
    string Name,
    ulong Handle,
    uint Flags,
    uint KeyType,
    uint KeyLen,
    uint? DataType,
    uint? DataLen,
    uint? ObjType,
    uint? Policy,
    ulong? Timeout,
    uint? GcInterval,
    byte[]? UserData,
    uint? DescSize,
    byte[]? DescConcat,
    byte[]? Expressions,
    ImmutableSortedDictionary<ElementKey, ElementRecord> Elements)
{
    public bool IsAnonymous => (Flags & SetAttr.FAnonymous) != 0;
    public bool IsMap => (Flags & SetAttr.FMap) != 0;
    public bool IsInterval => (Flags & SetAttr.FInterval) != 0;
    public bool IsVerdictMap => IsMap && DataType == DataAttr.VerdictMapType;
}
