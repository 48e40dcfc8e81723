namespace Bpfilter.Backend.Ir;

/// <summary>
/// One test on a packet: a key (field or concatenation) and an operator with its constants.
/// A matcher on a header field implies that header is present (see <see cref="HeaderProtocol"/>);
/// a packet that lacks it does not match, whatever the operator (nf_tables' NFT_BREAK), also for `!=`.
/// </summary>
public sealed record Matcher(MatchKey Key, Operator Operator)
{
    /// <summary>Key and operator kind without constants: rules whose matchers share shapes can be grouped into one map lookup.</summary>
    public MatcherShape Shape => new(Key, Operator.Kind, Operator is Masked m ? m.Mask : null);

    public static Matcher Eq(MatchKey key, Value value) => new(key, new Compare(CompareOp.Eq, Check(key, value)));
    public static Matcher Ne(MatchKey key, Value value) => new(key, new Compare(CompareOp.Ne, Check(key, value)));
    public static Matcher Lt(MatchKey key, Value value) => new(key, new Compare(CompareOp.Lt, Check(key, value)));
    public static Matcher Gt(MatchKey key, Value value) => new(key, new Compare(CompareOp.Gt, Check(key, value)));
    public static Matcher Le(MatchKey key, Value value) => new(key, new Compare(CompareOp.Le, Check(key, value)));
    public static Matcher Ge(MatchKey key, Value value) => new(key, new Compare(CompareOp.Ge, Check(key, value)));
    public static Matcher Range(MatchKey key, Value from, Value to, bool negated = false) =>
        new(key, new InRange(Check(key, from), Check(key, to), negated));
    public static Matcher Mask(MatchKey key, Value mask, Value value, bool negated = false) =>
        new(key, new Masked(Check(key, mask), Check(key, value), negated));
    public static Matcher InSet(MatchKey key, string set, bool negated = false) => new(key, new InSet(set, negated));

    /// <summary>`field addr/len`: a mask of <paramref name="prefixLength"/> leading ones.</summary>
    public static Matcher Prefix(Field field, Value address, int prefixLength, bool negated = false)
    {
        var mask = new byte[field.Bytes];
        if (prefixLength < 0 || prefixLength > field.Bits) throw new ArgumentOutOfRangeException(nameof(prefixLength));
        for (var i = 0; i < prefixLength; i++) mask[i / 8] |= (byte)(0x80 >> (i % 8));
        var masked = address.Bytes.Select((b, i) => (byte)(b & mask[i])).ToArray();
        return Mask(field, new Value(mask.AsSpan()), new Value(masked.AsSpan()), negated);
    }

    private static Value Check(MatchKey key, Value value)
    {
        if (value.Length != key.Bytes)
            throw new ArgumentException($"value {value} has {value.Length} bytes, key '{key}' needs {key.Bytes}");
        return value;
    }

    public override string ToString() => Operator.Format(Key);
}

/// <summary>A matcher without its constants (the mask stays: prefixes of one length group together).</summary>
public sealed record MatcherShape(MatchKey Key, OperatorKind Kind, Value? Mask);
