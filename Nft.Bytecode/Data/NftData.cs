using Nft.Bytecode.Wire;

namespace Nft.Bytecode.Data;

/// <summary>struct nft_data as carried in NFTA_*_DATA nests: a value or a verdict.</summary>
public abstract record NftData
{
    /// <summary>Layout of the outer data nest (which of NFTA_DATA_VALUE / NFTA_DATA_VERDICT, and flags) as decoded.</summary>
    public AttributeLayout? Layout { get; init; }
}

/// <summary>NFTA_DATA_VALUE: up to 64 bytes, in the byte order the expression uses (mostly network order).</summary>
public sealed record ValueData(byte[] Value) : NftData
{
    public bool Equals(ValueData? o) => o is not null && Value.AsSpan().SequenceEqual(o.Value) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Value.Length, Value.Length > 0 ? Value[0] : 0);
    public override string ToString() => $"0x{Convert.ToHexString(Value).ToLowerInvariant()}";
}

/// <summary>NFTA_DATA_VERDICT.</summary>
public sealed record VerdictData(Verdict Verdict) : NftData
{
    public override string ToString() => Verdict.ToString();
}
