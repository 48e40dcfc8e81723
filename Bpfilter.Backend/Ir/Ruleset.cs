using System.Text;

namespace Bpfilter.Backend.Ir;

/// <summary>
/// Everything the backend enforces: base chains (each at a hook), the regular chains they reach,
/// and the sets/maps their rules use. Names are opaque to the backend; the front-end makes them
/// unique (e.g. "inet filter/input").
/// </summary>
public sealed record Ruleset(ValueList<BaseChain> BaseChains, ValueList<Chain> Chains, ValueList<Set> Sets)
{
    public static readonly Ruleset Empty = new(ValueList<BaseChain>.Empty, ValueList<Chain>.Empty, ValueList<Set>.Empty);

    public Chain? FindChain(string name) => Chains.FirstOrDefault(c => c.Name == name);
    public Set? FindSet(string name) => Sets.FirstOrDefault(s => s.Name == name);

    /// <summary>Base chains grouped by attach point, each group in priority order.</summary>
    public IEnumerable<IGrouping<string, BaseChain>> ByAttachPoint() =>
        BaseChains.OrderBy(c => c.Priority).GroupBy(c => c.Hook.AttachPoint);

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var s in Sets) sb.Append(s).Append('\n');
        foreach (var c in BaseChains) sb.Append(c).Append('\n');
        foreach (var c in Chains) sb.Append(c).Append('\n');
        return sb.ToString();
    }
}
