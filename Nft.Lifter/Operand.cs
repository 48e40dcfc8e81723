using System.Numerics;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Ir;

namespace Nft.Lifter;

/// <summary>
/// What one register value means as an IR key: the field it reads and how a constant in register
/// layout (the bytes a cmp, range or set element holds) becomes a value of that field.
/// When <see cref="Mask"/> is set, only equality can be expressed: (field &amp; Mask) == value.
/// </summary>
internal sealed class Operand
{
    /// <param name="field">the IR field</param>
    /// <param name="regLen">bytes of the register value the constant covers</param>
    /// <param name="reverse">the register holds a host-order (little-endian) number</param>
    /// <param name="keep">bits of the (big-endian) register value that matter, or null for all</param>
    /// <param name="shiftRight">bits to drop on the right (a sub-byte field)</param>
    /// <param name="shiftLeft">bits to add on the right (a prefix of a wider field)</param>
    /// <param name="mask">for masked equality: the mask in field layout</param>
    public Operand(Field field, int regLen, bool reverse, BigInteger? keep, int shiftRight, int shiftLeft, Value? mask)
    {
        Field = field;
        RegLen = regLen;
        Reverse = reverse;
        Keep = keep;
        ShiftRight = shiftRight;
        ShiftLeft = shiftLeft;
        Mask = mask;
    }

    public Field Field { get; }
    public int RegLen { get; }
    public bool Reverse { get; }
    public BigInteger? Keep { get; }
    public int ShiftRight { get; }
    public int ShiftLeft { get; }
    public Value? Mask { get; }

    /// <summary>Whether ordered comparisons (lt, ranges, interval sets) keep their meaning.</summary>
    public bool Ordered => Mask == null && ShiftLeft == 0;

    /// <summary>Identity of the conversion, so that two uses of one named set convert its elements alike.</summary>
    public string Signature => $"{Field.Bits}:{RegLen}:{Reverse}:{Keep}:{ShiftRight}:{ShiftLeft}:{Mask}";

    /// <summary>The register number, as an unsigned big-endian integer.</summary>
    public BigInteger Number(ReadOnlySpan<byte> reg)
    {
        var b = reg[..RegLen].ToArray();
        if (Reverse) Array.Reverse(b);
        return new BigInteger(b, isUnsigned: true, isBigEndian: true);
    }

    /// <summary>
    /// Converts a register-layout constant; null when it has bits the field cannot hold (a comparison
    /// that can never be true, e.g. bits outside the mask).
    /// </summary>
    public Value? Convert(ReadOnlySpan<byte> reg)
    {
        if (reg.Length < RegLen) return null;
        if (IsWholeBytes) return new Value(reg[..RegLen]);
        return FromNumber(Number(reg));
    }

    /// <summary>
    /// <see cref="Convert"/> of a whole register value held in an array nobody writes (a set
    /// element's key): a plain load's value shares the array instead of copying it (a set can hold millions).
    /// </summary>
    public Value? ConvertShared(byte[] reg) =>
        IsWholeBytes && reg.Length == RegLen ? new Value(ImmutableCollectionsMarshal.AsImmutableArray(reg)) : Convert(reg.AsSpan());

    /// <summary>A plain load of whole bytes (addresses, ports in network order): the register bytes are the value.</summary>
    bool IsWholeBytes => Keep == null && ShiftRight == 0 && ShiftLeft == 0 && !Reverse && RegLen == Field.Bytes && Field.Bits == Field.Bytes * 8;

    /// <summary>Converts a register number (see <see cref="Number"/>); null if it does not fit the field.</summary>
    public Value? FromNumber(BigInteger x)
    {
        if (Keep is { } k)
        {
            if ((x & ~k & (BigInteger.One << RegLen * 8) - 1) != 0) return null;
            x &= k;
        }
        x >>= ShiftRight;
        x <<= ShiftLeft;
        if (x >= BigInteger.One << Field.Bits) return null;
        return ToValue(x, Field.Bytes);
    }

    public static Value ToValue(BigInteger x, int bytes)
    {
        var raw = x.ToByteArray(isUnsigned: true, isBigEndian: true);
        var b = new byte[bytes];
        if (raw.Length > bytes) throw new ArgumentOutOfRangeException(nameof(x));
        raw.CopyTo(b, bytes - raw.Length);
        return new Value(b.AsSpan());
    }
}

internal static class OperandRounding
{
    /// <summary>
    /// The smallest (up) or largest (down) register number a masked load can hold that is &gt;= / &lt;= x,
    /// as a field number; null when there is none. Without a mask the number itself.
    /// </summary>
    public static BigInteger? Round(this Operand o, BigInteger x, bool up)
    {
        var max = (BigInteger.One << o.RegLen * 8) - 1;
        if (x < 0 || x > max) return null;
        if (o.Keep is not { } k) return x;
        var unit = BigInteger.One << o.ShiftRight;
        var top = k; // largest value with only kept bits set is the mask itself (contiguous run)
        if (up)
        {
            var y = (x + unit - 1) / unit * unit;
            return y > top ? null : y;
        }
        var z = BigInteger.Min(x, top) / unit * unit;
        return z;
    }
}
