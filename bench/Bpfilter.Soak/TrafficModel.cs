namespace Bpfilter.Soak;

/// <summary>What a round of datagrams must do: per rule, packets counted; per port, delivered or dropped.</summary>
public sealed record TrafficExpectation(IReadOnlyDictionary<int, long> RulePackets, IReadOnlyDictionary<int, bool> Delivered);

/// <summary>
/// Predicts counters and verdicts for UDP datagrams arriving on the firewall's device: base chains in
/// hook and priority order, rules in chain order; every matching rule counts, drop ends the packet's
/// path, accept ends only its base chain (the next one still sees the packet), as in nf_tables.
/// </summary>
public static class TrafficModel
{
    public static TrafficExpectation Predict(SoakRuleset ruleset, IReadOnlyDictionary<int, int> packetsPerPort)
    {
        var counts = new Dictionary<int, long>();
        var delivered = new Dictionary<int, bool>();
        foreach (var (port, n) in packetsPerPort)
        {
            var dropped = false;
            foreach (var (table, chain) in ruleset.PacketPath)
            {
                foreach (var rule in chain.Rules)
                {
                    if (!SoakRuleset.Matches(table, rule, port)) continue;
                    counts[rule.Id] = counts.GetValueOrDefault(rule.Id) + n;
                    if (rule.Verdict is "drop") dropped = true;
                    if (rule.Verdict is "drop" or "accept") break;
                }
                if (dropped) break;
            }
            delivered[port] = !dropped;
        }
        return new TrafficExpectation(counts, delivered);
    }
}
