namespace Bpfilter.Backend.Ir;

/// <summary>Where a statement takes a value from: a constant, or a key read from the packet.</summary>
public abstract record StatementValue
{
    /// <summary>A constant, big-endian like every <see cref="Value"/>.</summary>
    public sealed record Immediate(Value Value) : StatementValue
    {
        public override string ToString() => Value.ToString();
    }

    /// <summary>The value of a field (or concatenation) of the packet, as a matcher would read it.</summary>
    public sealed record FromKey(MatchKey Key) : StatementValue
    {
        public override string ToString() => Key.ToString();
    }
}

/// <summary>Conntrack keys a rule can write (nft_ct set).</summary>
public enum CtKey { Mark, Label, Zone, Event, Secmark, Helper }

/// <summary>Packet metadata keys a rule can write (nft_meta set).</summary>
public enum MetaSetKey { Mark, Priority, PktType, NfTrace, Secmark }

/// <summary>`meta KEY set VALUE`: writes packet metadata; every packet passes on.</summary>
public sealed record MetaSetStatement(MetaSetKey Key, StatementValue Value) : Statement
{
    public override string ToString() => $"meta {Key.ToString().ToLowerInvariant()} set {Value}";
}

/// <summary>`ct KEY set VALUE`: writes the packet's conntrack entry (nothing happens without one).</summary>
public sealed record CtSetStatement(CtKey Key, StatementValue Value) : Statement
{
    public override string ToString() => $"ct {Key.ToString().ToLowerInvariant()} set {Value}";
}
