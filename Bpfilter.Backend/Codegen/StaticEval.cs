using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Codegen;

/// <summary>Evaluates operators on values known at compile time (e.g. iifname on a device-bound hook).</summary>
internal static class StaticEval
{
    public static int CompareBytes(Value a, Value b)
    {
        var x = a.Bytes.AsSpan();
        var y = b.Bytes.AsSpan();
        return x.SequenceCompareTo(y);
    }

    public static bool Evaluate(Operator op, Value v, Ir.Set? set) => op switch
    {
        Compare c => c.Op switch
        {
            CompareOp.Eq => CompareBytes(v, c.Value) == 0,
            CompareOp.Ne => CompareBytes(v, c.Value) != 0,
            CompareOp.Lt => CompareBytes(v, c.Value) < 0,
            CompareOp.Gt => CompareBytes(v, c.Value) > 0,
            CompareOp.Le => CompareBytes(v, c.Value) <= 0,
            _ => CompareBytes(v, c.Value) >= 0,
        },
        InRange r => (CompareBytes(v, r.From) >= 0 && CompareBytes(v, r.To) <= 0) != r.Negated,
        Masked m => MaskEquals(v, m) != m.Negated,
        InSet s => set is not null && set.Elements.Any(e => Contains(e, v)) != s.Negated,
        _ => throw new CodegenException($"cannot evaluate {op} at compile time"),
    };

    private static bool MaskEquals(Value v, Masked m)
    {
        for (var i = 0; i < v.Length; i++)
            if ((v.Bytes[i] & m.Mask.Bytes[i]) != m.Value.Bytes[i]) return false;
        return true;
    }

    private static bool Contains(SetElement e, Value v)
    {
        if (e.Key.Count != 1) return false;
        return e.Key[0] switch
        {
            KeyPart.Exact x => CompareBytes(x.Value, v) == 0,
            KeyPart.Range r => CompareBytes(v, r.From) >= 0 && CompareBytes(v, r.To) <= 0,
            KeyPart.Prefix p => PrefixContains(p, v),
            _ => false,
        };
    }

    private static bool PrefixContains(KeyPart.Prefix p, Value v)
    {
        for (var bit = 0; bit < p.Length; bit++)
        {
            var mask = (byte)(0x80 >> (bit % 8));
            if ((p.Value.Bytes[bit / 8] & mask) != (v.Bytes[bit / 8] & mask)) return false;
        }
        return true;
    }
}
