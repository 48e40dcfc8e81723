using System.Collections.Immutable;

namespace Bpfilter.Soak;

/// <summary>The hooks the soak's chains sit at, in the order an incoming IPv4 packet meets them.</summary>
public enum SoakHook { Ingress, Prerouting, Input }

/// <summary>
/// What a rule matches: the UDP destination ports of a literal or anonymous set (<see cref="Ports"/>),
/// or of a named set of its table (<see cref="SetName"/>); <see cref="Never"/> rules match no UDP
/// packet (they only force their chain into the kernel's nf_tables).
/// </summary>
public sealed record SoakMatch(ImmutableSortedSet<int> Ports, string? SetName = null, bool Never = false);

/// <summary>A rule: its match, `counter`, a verdict ("", "accept" or "drop") and comment "r{Id}" that names it in listings.</summary>
public sealed record SoakRule(int Id, SoakMatch Match, string Verdict);

public sealed record SoakSet(string Name, bool Interval, ImmutableSortedSet<int> Elements);

/// <summary>A base chain (policy accept) at <see cref="Hook"/>; priorities are unique per hook across tables, so the order is the kernel's.</summary>
public sealed record SoakChain(string Name, SoakHook Hook, int Priority, ImmutableList<SoakRule> Rules);

public sealed record SoakTable(string Family, string Name, ImmutableList<SoakChain> Chains, ImmutableList<SoakSet> Sets)
{
    public string Id => $"{Family} {Name}";
    public SoakChain Chain(string name) => Chains.Single(c => c.Name == name);
    public SoakSet Set(string name) => Sets.Single(s => s.Name == name);
    public SoakTable With(SoakChain chain) => this with { Chains = Chains.Replace(Chain(chain.Name), chain) };
    public SoakTable With(SoakSet set) => this with { Sets = Sets.Replace(Set(set.Name), set) };
}

/// <summary>The soak's model of the committed ruleset (the fixed table aside); transactions map one to the next.</summary>
public sealed record SoakRuleset(ImmutableList<SoakTable> Tables)
{
    public static readonly SoakRuleset Empty = new(ImmutableList<SoakTable>.Empty);

    public SoakTable Table(string id) => Tables.Single(t => t.Id == id);
    public SoakRuleset With(SoakTable table) => new(Tables.Replace(Table(table.Id), table));

    public IEnumerable<(SoakTable Table, SoakChain Chain)> AllChains =>
        Tables.SelectMany(t => t.Chains.Select(c => (t, c)));

    /// <summary>Base chains in the order a packet meets them: hook, then priority (unique per hook).</summary>
    public IEnumerable<(SoakTable Table, SoakChain Chain)> PacketPath =>
        AllChains.OrderBy(x => x.Chain.Hook).ThenBy(x => x.Chain.Priority);

    /// <summary>True when a UDP datagram to <paramref name="port"/> matches the rule.</summary>
    public static bool Matches(SoakTable table, SoakRule rule, int port) =>
        !rule.Match.Never && (rule.Match.SetName is { } set ? table.Set(set).Elements.Contains(port) : rule.Match.Ports.Contains(port));
}
