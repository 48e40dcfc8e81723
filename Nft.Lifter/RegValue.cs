using Bpfilter.Backend.Ir;

namespace Nft.Lifter;

/// <summary>Where a register value came from.</summary>
internal abstract record RegSource;

/// <summary>payload load: Len bytes at Offset from header Base (NFT_PAYLOAD_*_HEADER).</summary>
internal sealed record PayloadSource(uint Base, uint Offset) : RegSource;

/// <summary>meta load of a key the IR knows (or iiftype, a dependency only).</summary>
internal sealed record MetaSource(uint Key, MetaKey? IrKey) : RegSource;

/// <summary>ct load of a key the IR reads (<see cref="CtNames"/>).</summary>
internal sealed record CtSource(uint Key, byte? Direction, CtField Field) : RegSource;

/// <summary>immediate data: only the statements bpfilter-nft refuses consume it.</summary>
internal sealed record ConstSource(byte[] Data) : RegSource;

/// <summary>
/// One value in the register file: what loaded it, how long it is, and the transformations applied
/// since (a bitwise mask, a host-to-network byteorder). Mask is in register byte order.
/// Consumed: some cmp/lookup/range read it; a value nobody reads means the rule is refused.
/// </summary>
internal sealed class RegValue
{
    public RegValue(RegSource source, int len, int producer)
    {
        Source = source;
        Len = len;
        Producer = producer;
    }

    public RegSource Source { get; }
    public int Len { get; }
    /// <summary>Index of the expression that loaded it (errors about unused values point there).</summary>
    public int Producer { get; }
    public byte[]? Mask { get; init; }
    /// <summary>A byteorder hton turned a host-order meta value into network order.</summary>
    public bool Hton { get; init; }
    public bool Consumed { get; set; }
    /// <summary>Set when a transformation the IR cannot express touched the value: any match on it is refused there.</summary>
    public (int Index, string Reason)? Unsupported { get; init; }

    /// <summary>Slots of 4 bytes it occupies (values are padded to 4 bytes).</summary>
    public int Slots => (Len + 3) / 4;
    public int PaddedLen => Slots * 4;

    /// <summary>Meta values nf_tables keeps in host byte order (and that no byteorder converted).</summary>
    public bool HostOrder => !Hton && Source switch
    {
        MetaSource m => m.IrKey is MetaKey.Mark or MetaKey.Iif or MetaKey.Oif or MetaKey.Length,
        CtSource c => CtNames.IsHostOrder(c.Field.Key),
        _ => false,
    };
}
