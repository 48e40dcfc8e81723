namespace Nft.Lifter;

/// <summary>
/// Positions in the ruleset as nft lists it (table, chain, rule), so results lifted chain by chain
/// come out in the order a whole-ruleset lift produced: IR chains, sets and listings in ruleset
/// order, and the first refusal the one nearest the start (rules before set contents within a table,
/// as the lifter reads sets once their readers are known).
/// </summary>
internal sealed class Order
{
    readonly Dictionary<string, int> _chains = new(StringComparer.Ordinal);
    readonly Dictionary<(string, ulong), int> _rules = new();

    public Order(SourceTable table, int index)
    {
        Table = table;
        Index = index;
        for (int i = 0; i < table.Chains.Count; i++)
        {
            var c = table.Chains[i];
            _chains[c.Name] = i;
            for (int j = 0; j < c.Rules.Count; j++) _rules[(c.Name, c.Rules[j].Handle ?? 0)] = j;
        }
    }

    public SourceTable Table { get; }
    public int Index { get; }

    public int Chain(string? name) => name != null && _chains.TryGetValue(name, out var i) ? i : -1;
    public int Rule(string? chain, ulong? handle) => chain != null && handle is { } h && _rules.TryGetValue((chain, h), out var i) ? i : -1;

    public (int, int, int, int, int) Of(LiftRefusal r) =>
        (Index, r.Chain == null ? -1 : r.Set != null ? 1 : 0, Chain(r.Chain), Rule(r.Chain, r.RuleHandle), r.ExpressionIndex);

    public (int, int, int) Of(string chain, ulong handle) => (Index, Chain(chain), Rule(chain, handle));
}
