using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// The rules a batch added, replaced and removed, per chain (family, table, chain handle): while
/// <see cref="Complete"/>, a chain's rules after the batch are its rules before it with exactly these changed, every
/// other rule the same object at its place. The commit then follows the change: the rule journal's chain diff looks
/// up only these rules (<see cref="StateCodec.RuleChanges"/>), and validation skips a table whose changed rules refer
/// to no chain or set (<see cref="Transaction.Validate"/>).
/// </summary>
internal sealed class RuleTouches
{
    /// <summary>One chain's touched rules: each handle with whether the rule is in the chain now, and which handles are new in this batch.</summary>
    public sealed class Chain
    {
        public readonly Dictionary<ulong, bool> Present = new();
        public readonly HashSet<ulong> New = new();
    }

    readonly Dictionary<(byte Family, string Table, ulong Chain), Chain> _chains = new();
    /// <summary>Tables where a touched rule (before or after) jumps, goes to, or names a set: one of the edges validation walks may have changed.</summary>
    readonly HashSet<(byte Family, string Table)> _references = new();

    /// <summary>False once rules changed some other way (a chain rename rewrites the jumps to it): nothing may be inferred from the record then.</summary>
    public bool Complete { get; private set; } = true;

    public void Incomplete() => Complete = false;

    public void Added(TableRecord t, ChainRecord c, RuleRecord r)
    {
        var chain = For(t, c);
        chain.New.Add(r.Handle);
        chain.Present[r.Handle] = true;
        Note(t, r);
    }

    /// <summary><paramref name="now"/> took the place (and handle) of <paramref name="was"/>.</summary>
    public void Replaced(TableRecord t, ChainRecord c, RuleRecord was, RuleRecord now)
    {
        For(t, c).Present[now.Handle] = true;
        Note(t, was);
        Note(t, now);
    }

    public void Removed(TableRecord t, ChainRecord c, RuleRecord r)
    {
        For(t, c).Present[r.Handle] = false;
        Note(t, r);
    }

    /// <summary>The chain's touched rules, or null when the batch touched none of its rules.</summary>
    public Chain? Of(byte family, string table, ulong chain) => _chains.GetValueOrDefault((family, table, chain));

    /// <summary>Whether a rule this batch touched in the table refers to a chain or a set.</summary>
    public bool TouchedReferences(byte family, string table) => _references.Contains((family, table));

    Chain For(TableRecord t, ChainRecord c)
    {
        var key = (t.Family, t.Name, c.Handle);
        if (!_chains.TryGetValue(key, out var chain)) _chains[key] = chain = new Chain();
        return chain;
    }

    void Note(TableRecord t, RuleRecord r)
    {
        if (RefersToChainOrSet(r)) _references.Add((t.Family, t.Name));
    }

    /// <summary>What <see cref="ChainValidator"/> follows out of a rule: a jump or goto, or a set (a verdict map's elements may jump).</summary>
    public static bool RefersToChainOrSet(RuleRecord r)
    {
        foreach (var e in r.Expressions)
            if (ExprRefs.ChainTarget(e) != null || ExprRefs.SetName(e) != null) return true;
        return false;
    }
}
