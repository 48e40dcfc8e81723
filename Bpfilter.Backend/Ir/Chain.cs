using System.Text;

namespace Bpfilter.Backend.Ir;

/// <summary>A regular chain, reached by jump/goto; falling off its end returns to the caller.</summary>
public sealed record Chain(string Name, ValueList<Rule> Rules)
{
    /// <summary>Counters of rules a lowering pass removed because they can never run: they exist and read zero.</summary>
    public ValueList<ulong> IdleCounters { get; init; }

    public override string ToString() => Format($"chain {Name}", Rules, null);

    internal static string Format(string header, ValueList<Rule> rules, string? footer)
    {
        var sb = new StringBuilder(header).Append(" {\n");
        foreach (var r in rules) sb.Append("    ").Append(r).Append('\n');
        if (footer is not null) sb.Append("    ").Append(footer).Append('\n');
        return sb.Append('}').ToString();
    }
}

/// <summary>
/// A base chain: attached at a hook, evaluated in Priority order with the other base chains of the
/// same attach point (lower first, as nf_tables). Policy (accept or drop) applies after the last rule.
/// For netfilter hooks the hook carries the priority too; for XDP/TC it orders chains sharing a device.
/// </summary>
public sealed record BaseChain(string Name, Hook Hook, int Priority, Verdict Policy, ValueList<Rule> Rules)
{
    /// <summary>Counters of rules a lowering pass removed because they can never run: they exist and read zero.</summary>
    public ValueList<ulong> IdleCounters { get; init; }

    public override string ToString() =>
        Chain.Format($"chain {Name} ({Hook}, priority {Priority})", Rules, $"policy {Policy}");
}
