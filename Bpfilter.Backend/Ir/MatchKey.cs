namespace Bpfilter.Backend.Ir;

/// <summary>
/// What a matcher or set reads: one field, or a concatenation of fields (`ip saddr . tcp dport`).
/// A concatenated value is the fields' values laid end to end, each ceil(bits/8) bytes, no padding.
/// </summary>
public sealed record MatchKey(ValueList<Field> Fields)
{
    public MatchKey(params Field[] fields) : this(ValueList.Of(fields)) { }

    public bool IsConcatenation => Fields.Count > 1;

    /// <summary>Bytes of a value for this key.</summary>
    public int Bytes => Fields.Sum(f => f.Bytes);

    public static implicit operator MatchKey(Field field) => new(field);

    /// <summary>Formats a value of this key field by field (`10.0.0.1 . 22`).</summary>
    public string Format(Value value)
    {
        if (value.Length != Bytes) return value.ToString();
        var parts = new List<string>();
        var at = 0;
        foreach (var f in Fields)
        {
            parts.Add(new Value(value.Bytes.AsSpan().Slice(at, f.Bytes)).Format(f.Display));
            at += f.Bytes;
        }
        return string.Join(" . ", parts);
    }

    public override string ToString() => string.Join(" . ", Fields);
}
