using System.Collections.Immutable;

namespace Nft.Engine.Model;

/// <summary>A rule: its handle, its expressions in the form the kernel dumps them, and nft's user data.</summary>
public sealed record RuleRecord(ulong Handle, ImmutableArray<ExprRecord> Expressions, byte[]? UserData);

/// <summary>
/// One expression. <see cref="Data"/> holds the attributes inside NFTA_EXPR_DATA as the kernel dumps
/// them (set names resolved, transaction ids dropped), so that typed decoders (Nft.Bytecode) can read
/// them. References to other objects are pulled out for the bookkeeping the kernel does
/// (use counts, EBUSY, jump validation).
/// </summary>
public sealed record ExprRecord(string Name, byte[] Data)
{
    /// <summary>Set this expression is bound to (lookup, dynset, objref map), by name.</summary>
    public string? SetName { get; init; }
    /// <summary>Target of a jump/goto verdict (immediate).</summary>
    public string? ChainTarget { get; init; }
    /// <summary>Verdict code of an immediate verdict (jump, goto, accept...), or null.</summary>
    public int? Verdict { get; init; }
    /// <summary>Named object referenced (objref immediate), with its type.</summary>
    public string? ObjectName { get; init; }
    public uint ObjectType { get; init; }
    /// <summary>Runtime state of stateful expressions (counter, quota): packets/bytes or consumed bytes.</summary>
    public CounterCell? Counter { get; init; }
}
