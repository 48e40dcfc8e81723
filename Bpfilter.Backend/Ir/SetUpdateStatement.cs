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
/// as nft_dynset. Timeout: the lifetime of a new element and what `update` renews an expiring one to,
/// the rule's own or else the set's default (the lifter resolves it, as nft_dynset's
/// <c>priv->timeout ?: set->timeout</c>); null: new elements never expire, and `update` renews an
/// expiring element to now (it expires at once, as the kernel's now + 0). Data: the value stored
/// in a map. Stateful: the statement list this rule gives the elements it makes (`{ ip saddr limit rate
/// 10/second }`, meters: nft_dynset_new clones the rule's own list into the element), one of the set's
/// <see cref="Set.RuleLists"/>, empty for none; null: the set's <see cref="Set.PacketStatements"/>. Every element
/// found or made then runs its own list (the one its maker gave it); when one breaks, the rule breaks. A full set
/// (its <see cref="Set.Size"/> elements) breaks `add` and `update` of a new key. NewElementsExpire: false when the
/// rule's new elements never expire whatever Timeout is (nft_dynset_init gave the rule's template no timeout: the rule
/// has none of its own and was made while its set had no default), while `update` still renews an element that
/// expires to Timeout (the set's default now).
/// </summary>
public sealed record SetUpdateStatement(SetUpdateOp Op, string Set, MatchKey Key, TimeSpan? Timeout = null,
    StatementValue? Data = null, ValueList<Statement>? Stateful = null, bool NewElementsExpire = true) : Statement
{
    public override bool MayBreak => true;

    public override string ToString()
    {
        var s = $"{Op.ToString().ToLowerInvariant()} @{Set} {{ {Key}";
        if (Timeout is { } t) s += $" timeout {(long)t.TotalMilliseconds}ms";
        if (!NewElementsExpire) s += " (new elements never expire)";
        if (Data is not null) s += $" : {Data}";
        foreach (var st in Stateful ?? default) s += $" {st}";
        return s + " }";
    }
}
