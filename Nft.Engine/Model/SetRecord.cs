using Nft.Bytecode;
using Nft.Bytecode.Expressions;

namespace Nft.Engine.Model;

/// <summary>
/// A named or anonymous set or map, with its elements ordered by key. <see cref="Expr"/> and
/// <see cref="Expressions"/> are the set's statements (NFTA_SET_EXPR or NFTA_SET_EXPRESSIONS) in their dump form.
/// </summary>
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
    IReadOnlyList<uint>? ConcatFieldLens,
    Expression? Expr,
    IReadOnlyList<Expression>? Expressions,
    ElementSet Elements)
{
    public bool IsAnonymous => (Flags & (uint)NftSetFlags.Anonymous) != 0;
    public bool IsMap => (Flags & (uint)NftSetFlags.Map) != 0;
    public bool IsInterval => (Flags & (uint)NftSetFlags.Interval) != 0;
    public bool HasStatements => Expr != null || Expressions != null;
    public bool IsVerdictMap => IsMap && DataType == Nft.Bytecode.Objects.Set.VerdictDataType;
}
