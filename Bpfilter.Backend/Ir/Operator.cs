namespace Bpfilter.Backend.Ir;

/// <summary>The shape of an operator without its constants; used to group matchers.</summary>
public enum OperatorKind { Eq, Ne, Lt, Gt, Le, Ge, Range, Mask, InSet }

/// <summary>How a matcher compares its key. Constants are big-endian values of the key's width.</summary>
public abstract record Operator
{
    public abstract OperatorKind Kind { get; }
    internal abstract string Format(MatchKey key);
}

public enum CompareOp { Eq, Ne, Lt, Gt, Le, Ge }

/// <summary>key OP value, unsigned comparison as nf_tables' cmp (network order = numeric order).</summary>
public sealed record Compare(CompareOp Op, Value Value) : Operator
{
    public override OperatorKind Kind => (OperatorKind)(int)Op;

    internal override string Format(MatchKey key)
    {
        var op = Op switch
        {
            CompareOp.Eq => "==", CompareOp.Ne => "!=", CompareOp.Lt => "<",
            CompareOp.Gt => ">", CompareOp.Le => "<=", _ => ">=",
        };
        return $"{key} {op} {key.Format(Value)}";
    }
}

/// <summary>From &lt;= key &lt;= To (inclusive, unsigned); negated = outside the range.</summary>
public sealed record InRange(Value From, Value To, bool Negated = false) : Operator
{
    public override OperatorKind Kind => OperatorKind.Range;
    internal override string Format(MatchKey key) =>
        $"{key} {(Negated ? "!= " : "")}{key.Format(From)}-{key.Format(To)}";
}

/// <summary>
/// (key &amp; Mask) == Value, or != when negated. Covers prefixes (`ip saddr 10.0.0.0/8`),
/// bit tests (`tcp flags &amp; (syn|ack) == syn`) and wildcard names (`iifname "eth*"`).
/// Value must have no bits outside Mask.
/// </summary>
public sealed record Masked(Value Mask, Value Value, bool Negated = false) : Operator
{
    public override OperatorKind Kind => OperatorKind.Mask;

    /// <summary>The prefix length if Mask is leading ones then zeros, else null.</summary>
    public int? PrefixLength
    {
        get
        {
            var n = 0;
            var ended = false;
            foreach (var b in Mask.Bytes)
                for (var bit = 7; bit >= 0; bit--)
                {
                    var one = (b >> bit & 1) == 1;
                    if (one && ended) return null;
                    if (one) n++; else ended = true;
                }
            return n;
        }
    }

    internal override string Format(MatchKey key)
    {
        var neg = Negated ? "!= " : "";
        if (PrefixLength is { } len && key.Fields.Count == 1 && key.Fields[0].Display is ValueDisplay.Ipv4 or ValueDisplay.Ipv6)
            return $"{key} {neg}{key.Format(Value)}/{len}";
        return $"{key} & {Mask} {(Negated ? "!=" : "==")} {Value}";
    }
}

/// <summary>Membership of the key in a named set (`ip saddr @blocklist`, `!=` when negated).</summary>
public sealed record InSet(string Set, bool Negated = false) : Operator
{
    public override OperatorKind Kind => OperatorKind.InSet;
    internal override string Format(MatchKey key) => $"{key} {(Negated ? "!= " : "")}@{Set}";
}
