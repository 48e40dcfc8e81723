namespace Bpfilter.Backend.Ir;

/// <summary>How the packet path changes a set, as nft_dynset's operations.</summary>
public enum SetUpdateOp
{
    /// <summary>`add @s { key }`: inserts the key if absent; an existing element keeps its expiry.</summary>
    Add,
    /// <summary>`update @s { key }`: inserts the key or refreshes the existing element's timeout.</summary>
    Update,
    /// <summary>`delete @s { key }`: removes the key if present.</summary>
    Delete,
}

/// <summary>
/// Adds, updates or deletes the element Key (read from the packet) in set Set from the packet path,
/// as nft_dynset. Timeout: the element's lifetime (null: the set's default). Data: the value stored
/// in a map. Stateful: statements attached to the element (`{ ip saddr limit rate 10/second }`,
/// meters), evaluated per element; when one of them breaks, the rule breaks. A full set breaks too.
/// </summary>
public sealed record SetUpdateStatement(SetUpdateOp Op, string Set, MatchKey Key, TimeSpan? Timeout = null,
    StatementValue? Data = null, ValueList<Statement> Stateful = default) : Statement
{
    public override bool MayBreak => true;

    public override string ToString()
    {
        var s = $"{Op.ToString().ToLowerInvariant()} @{Set} {{ {Key}";
        if (Timeout is { } t) s += $" timeout {(long)t.TotalMilliseconds}ms";
        if (Data is not null) s += $" : {Data}";
        foreach (var st in Stateful) s += $" {st}";
        return s + " }";
    }
}
