using System.Text.RegularExpressions;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// The packet corpus covers what issue 3 asks for: every hook kind per family, both IP versions,
/// the transport protocols, VLAN, fragments, options, extension headers, and the ruleset constructs.
/// Checked on the files, so a deleted case cannot silently shrink the coverage.
/// </summary>
public class CorpusCoverageTests
{
    static readonly IReadOnlyList<PacketCase> All = PacketCase.AllNames().Select(PacketCase.Load).ToList();

    [Fact]
    public void CorpusHasAtLeast25RulesetsWithCounters()
    {
        Assert.True(All.Count >= 25, $"only {All.Count} packet cases");
        foreach (var c in All)
            Assert.True(c.Ruleset.Contains("counter"), $"{c.Name} has no counter: its listings would compare nothing");
    }

    /// <summary>(family, hook) pairs the base chains of all cases attach to.</summary>
    static HashSet<string> Hooks()
    {
        var found = new HashSet<string>();
        foreach (var c in All)
        {
            string? family = null;
            foreach (var line in c.Ruleset.Split('\n'))
            {
                var t = Regex.Match(line, @"^\s*table\s+(\w+)\s");
                if (t.Success) family = t.Groups[1].Value;
                var h = Regex.Match(line, @"\bhook\s+(\w+)");
                if (h.Success && family != null) found.Add($"{family} {h.Groups[1].Value}");
            }
        }
        return found;
    }

    [Fact]
    public void EveryHookKindIsCovered()
    {
        var hooks = Hooks();
        var wanted = new List<string> { "netdev ingress", "netdev egress", "inet ingress" };
        foreach (var family in new[] { "ip", "ip6", "inet" })
            foreach (var hook in new[] { "prerouting", "input", "forward", "output", "postrouting" })
                wanted.Add($"{family} {hook}");
        var missing = wanted.Where(w => !hooks.Contains(w)).ToList();
        Assert.True(missing.Count == 0, $"no case uses: {string.Join(", ", missing)}");
    }

    [Fact]
    public void EveryPacketFeatureIsCovered()
    {
        var packets = All.SelectMany(c => c.Packets).ToList();
        var kinds = packets.SelectMany(p => p.Layers).Select(l => l.Kind).ToHashSet();
        var missing = new[] { "vlan", "ip4", "ip6", "tcp", "udp", "icmp", "icmp6", "hbh", "rt", "dstopt", "frag6" }
            .Where(k => !kinds.Contains(k)).ToList();
        bool Has(string kind, string field) => packets.Any(p => p.Layers.Any(l => l.Kind == kind && l.Has(field)));
        if (!Has("ip4", "frags")) missing.Add("IPv4 fragments");
        if (!Has("ip6", "frags")) missing.Add("IPv6 fragments");
        if (!Has("ip4", "opts")) missing.Add("IPv4 options");
        foreach (var o in Enum.GetValues<Origin>())
            if (!packets.Any(p => p.From == o)) missing.Add($"packets from {o}");
        if (!packets.Any(p => p.ExpectDelivered) || !packets.Any(p => !p.ExpectDelivered)) missing.Add("both outcomes");
        Assert.True(missing.Count == 0, $"no packet has: {string.Join(", ", missing)}");
    }

    [Fact]
    public void EveryRulesetConstructIsCovered()
    {
        var text = string.Join("\n", All.Select(c => c.Ruleset));
        var constructs = new Dictionary<string, string>
        {
            ["named set"] = @"^\s*set \S+ \{",
            ["data map"] = @"^\s*map \S+ \{\s*\n\s*type [^\n]*: (?!verdict)",
            ["verdict map"] = @"\bvmap\b",
            ["concatenation"] = @"\S \. \S",
            ["interval set"] = @"flags interval",
            ["anonymous range"] = @"\{ \d+-\d+",
            ["jump"] = @"\bjump \w",
            ["goto"] = @"\bgoto \w",
            ["return"] = @"\breturn\b",
            ["policy drop"] = @"policy drop;",
            ["policy accept"] = @"policy accept;",
            ["counter object"] = @"^\s*counter \S+ \{",
        };
        var missing = constructs.Where(kv => !Regex.IsMatch(text, kv.Value, RegexOptions.Multiline)).Select(kv => kv.Key).ToList();
        Assert.True(missing.Count == 0, $"no ruleset has: {string.Join(", ", missing)}");
    }

    /// <summary>
    /// A `daemon-refuses` case sends no packet through bpfilterd, so its packets must reach bpfilterd
    /// through a sibling NAME-l4 that it loads: the same packets (name, origin, layers), no directive.
    /// </summary>
    [Fact]
    public void EveryRefusedCaseHasAComparedSibling()
    {
        static string Shape(PacketSpec p) => $"{p.Name} {p.From}: {string.Join(" / ", p.Layers.Select(l => l.Source))}";
        var refused = All.Where(c => c.DaemonRefuses != null).ToList();
        Assert.NotEmpty(refused);
        foreach (var c in refused)
        {
            var sibling = All.FirstOrDefault(s => s.Name == c.Name + "-l4");
            Assert.True(sibling != null, $"{c.Name} is refused by bpfilterd and has no {c.Name}-l4 sibling");
            Assert.True(sibling!.DaemonRefuses == null, $"{sibling.Name} is refused too: its packets are compared with nothing");
            Assert.Equal(c.Packets.Select(Shape), sibling.Packets.Select(Shape));
        }
    }
}

/// <summary>
/// The rulesets corpus covers what issue 7 asks for (a server with ct state and reject, a router
/// with masquerade and port forwards, a container host with nat chains and verdict maps, a ban
/// list, arp and bridge tables, a multi-WAN mark setup), and each file says where its chains run.
/// </summary>
public class RulesetsCorpusCoverageTests
{
    static readonly IReadOnlyList<string> Names = PacketCase.NamesIn(PacketCase.RulesetsDirectory).ToList();
    static readonly IReadOnlyList<PacketCase> All = Names.Select(n => PacketCase.LoadFrom(PacketCase.RulesetsDirectory, n)).ToList();

    [Fact]
    public void AtLeastEightRulesetsWithCountersAndAPlacementHeader()
    {
        Assert.True(All.Count >= 8, $"only {All.Count} rulesets");
        foreach (var c in All)
        {
            Assert.True(c.Ruleset.Contains("counter"), $"{c.Name} has no counter: its listings would compare nothing");
            var text = File.ReadAllText(Path.Combine(PacketCase.RulesetsDirectory, c.Name + ".nft"));
            var header = text[..text.IndexOf("ruleset <<", StringComparison.Ordinal)];
            Assert.True(header.Contains("# Placement (issue 7):"), $"{c.Name} does not say where its base chains run");
            Assert.True(c.Packets.Any(p => p.ExpectDelivered) && c.Packets.Any(p => !p.ExpectDelivered), $"{c.Name} needs packets of both outcomes");
        }
    }

    [Fact]
    public void EveryDeploymentConstructIsCovered()
    {
        var text = string.Join("\n", All.Select(c => c.Ruleset));
        var constructs = new Dictionary<string, string>
        {
            ["ct state"] = @"\bct state (established|new|invalid)",
            ["ct mark"] = @"\bct mark set\b",
            ["ct status dnat"] = @"\bct status dnat\b",
            ["reject tcp reset"] = @"reject with tcp reset",
            ["reject icmpx"] = @"reject with icmpx",
            ["masquerade"] = @"\bmasquerade\b",
            ["dnat"] = @"\bdnat (ip )?to\b",
            ["nat chain"] = @"type nat hook (prerouting|postrouting|output)",
            ["route chain"] = @"type route hook output",
            ["verdict map on iifname"] = @"iifname vmap",
            ["numgen"] = @"\bnumgen \w+ mod \d+ vmap",
            ["set with timeouts"] = @"flags (dynamic,)?timeout",
            ["set written from the packet path"] = @"\badd @\S+ \{",
            ["meta mark set"] = @"meta mark set",
            ["limit"] = @"\blimit rate\b",
            ["log"] = @"\blog prefix\b",
            ["arp table"] = @"^table arp ",
            ["bridge table"] = @"^table bridge ",
            ["vlan match"] = @"\bvlan id \d+",
            ["netdev ingress"] = @"hook ingress device",
        };
        var missing = constructs.Where(kv => !Regex.IsMatch(text, kv.Value, RegexOptions.Multiline)).Select(kv => kv.Key).ToList();
        Assert.True(missing.Count == 0, $"no ruleset has: {string.Join(", ", missing)}");
    }

    [Fact]
    public void EveryRunnerExtensionIsUsed()
    {
        var packets = All.SelectMany(c => c.Packets).ToList();
        var missing = new List<string>();
        if (!All.Any(c => c.Topology == TopologyKind.Bridge)) missing.Add("topology bridge");
        if (!All.Any(c => c.Routes.Any(r => r.Table == null))) missing.Add("route");
        if (!All.Any(c => c.Rules.Count > 0)) missing.Add("rule fwmark");
        if (!packets.Any(p => p.ArrivesAs.Count > 0)) missing.Add("arrives with rewritten fields");
        if (!packets.Any(p => p.Layers.Any(l => l.Kind == "arp"))) missing.Add("arp layer");
        foreach (var o in Enum.GetValues<Origin>())
            if (!packets.Any(p => p.From == o)) missing.Add($"packets from {o}");
        Assert.True(missing.Count == 0, $"unused: {string.Join(", ", missing)}");
    }
}
