using Nft.Bytecode.Expressions;

namespace Nft.Engine;

/// <summary>
/// The expressions a batch's rules sent byte for byte alike, decoded once: an expression record is immutable, and of the
/// kinds kept here its kernel form follows from its bytes alone (no set, chain or object of the table to bind), so the
/// same NFTA_LIST_ELEM gives the same record. A batch of 100,000 `ip saddr X udp dport Y counter drop` sends the same
/// payload loads, meta loads, their compares and the counter in every rule: one record each, not one per rule.
/// </summary>
internal sealed class SharedExpressions
{
    /// <summary>Longest nest kept (its raw type and payload): the loads and compares of a rule are a few dozen bytes.</summary>
    const int MaxKeyBytes = 128;

    /// <summary>Distinct nests kept at most in one batch (what arrives is untrusted); past it, nests are decoded each time.</summary>
    const int Capacity = 4096;

    readonly Dictionary<byte[], Expression> _byBytes = new(KeyComparer.Instance);
    readonly Dictionary<byte[], Expression>.AlternateLookup<ReadOnlySpan<byte>> _bySpan;

    public SharedExpressions() => _bySpan = _byBytes.GetAlternateLookup<ReadOnlySpan<byte>>();

    /// <summary>Whether a decoded, bound kernel form is one of the kinds whose form depends on its bytes alone.</summary>
    public static bool Shareable(Expression e) =>
        e is PayloadExpr or MetaExpr or CmpExpr or CounterExpr or BitwiseExpr or ByteorderExpr or RangeExpr;

    /// <summary>The key of a nest: its raw type (little-endian) and payload, in <paramref name="buffer"/>; empty when too long.</summary>
    public static ReadOnlySpan<byte> Key(ushort rawType, ReadOnlySpan<byte> payload, Span<byte> buffer)
    {
        if (payload.Length + 2 > buffer.Length) return default;
        buffer[0] = (byte)rawType;
        buffer[1] = (byte)(rawType >> 8);
        payload.CopyTo(buffer[2..]);
        return buffer[..(payload.Length + 2)];
    }

    public const int KeyBufferSize = MaxKeyBytes + 2;

    public bool TryGet(ReadOnlySpan<byte> key, out Expression e)
    {
        e = null!;
        return !key.IsEmpty && _bySpan.TryGetValue(key, out e!);
    }

    public void Add(ReadOnlySpan<byte> key, Expression e)
    {
        if (!key.IsEmpty && _byBytes.Count < Capacity && Shareable(e)) _byBytes.TryAdd(key.ToArray(), e);
    }

    sealed class KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly KeyComparer Instance = new();
        public bool Equals(byte[]? a, byte[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(byte[] key) => Hash(key);
        public bool Equals(ReadOnlySpan<byte> a, byte[] b) => a.SequenceEqual(b);
        public int GetHashCode(ReadOnlySpan<byte> key) => Hash(key);
        public byte[] Create(ReadOnlySpan<byte> key) => key.ToArray();

        static int Hash(ReadOnlySpan<byte> key)
        {
            var h = new HashCode();
            h.AddBytes(key);
            return h.ToHashCode();
        }
    }
}
