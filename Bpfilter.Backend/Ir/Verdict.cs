namespace Bpfilter.Backend.Ir;

/// <summary>
/// What a rule does when all its matchers match, with nf_tables semantics: accept ends the current
/// base chain (later base chains on the same hook still run), drop ends everything, continue goes on
/// to the next rule, return goes back to the calling chain (from a base chain: the policy), jump
/// calls a regular chain and comes back, goto goes to a chain and does not come back.
/// A verdict is the statement that ends a rule (see <see cref="Rule"/>).
/// </summary>
public abstract record Verdict : Statement
{
    public static readonly AcceptVerdict Accept = new();
    public static readonly DropVerdict Drop = new();
    public static readonly ContinueVerdict Continue = new();
    public static readonly ReturnVerdict Return = new();
    public static JumpVerdict Jump(string chain) => new(chain);
    public static GotoVerdict Goto(string chain) => new(chain);
    public static VerdictMapVerdict VMap(MatchKey key, string map) => new(key, map);
}

public sealed record AcceptVerdict : Verdict { public override string ToString() => "accept"; }
public sealed record DropVerdict : Verdict { public override string ToString() => "drop"; }
public sealed record ContinueVerdict : Verdict { public override string ToString() => "continue"; }
public sealed record ReturnVerdict : Verdict { public override string ToString() => "return"; }
public sealed record JumpVerdict(string Chain) : Verdict { public override string ToString() => $"jump {Chain}"; }
public sealed record GotoVerdict(string Chain) : Verdict { public override string ToString() => $"goto {Chain}"; }

/// <summary>
/// `KEY vmap @map`: look the key up in a verdict map and apply the verdict found (accept, drop,
/// return, jump, goto; never another map); no element = continue with the next rule.
/// </summary>
public sealed record VerdictMapVerdict(MatchKey Key, string Map) : Verdict
{
    public override string ToString() => $"{Key} vmap @{Map}";
}
