using Nft.Bytecode;
using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// A named or anonymous set or map: the Nft.Bytecode set as the kernel stores it (name, handle, flags,
/// key and data types, object type, policy, timeout, gc interval, user data, description, and its
/// statements in dump form; no table, id or element count), with its elements ordered by key.
/// </summary>
public sealed record SetRecord(Set Set, ElementSet Elements)
{
    public string Name => Set.Name!;
    public ulong Handle => Set.Handle ?? 0;
    public uint Flags => Set.Flags ?? 0;
    public uint KeyLen => Set.KeyLen ?? 0;
    /// <summary>NFTA_SET_DESC_SIZE, if given (or defaulted for sets the packet path updates).</summary>
    public uint? DescSize => Set.Desc?.Size;
    public IReadOnlyList<uint>? ConcatFieldLens => Set.Desc?.ConcatFieldLens;
    public bool IsAnonymous => (Flags & (uint)NftSetFlags.Anonymous) != 0;
    public bool IsMap => (Flags & (uint)NftSetFlags.Map) != 0;
    public bool IsInterval => (Flags & (uint)NftSetFlags.Interval) != 0;
    public bool IsObjectMap => (Flags & (uint)NftSetFlags.Object) != 0;
    public bool HasStatements => Set.Expr != null || Set.Expressions != null;
    public bool IsVerdictMap => IsMap && Set.DataType == Set.VerdictDataType;
}
