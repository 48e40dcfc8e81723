using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// One file of integration/corpus/packets/ (format in its README): a ruleset and the packets to
/// send through it, each with the kernel's expected outcome.
/// </summary>
public sealed record PacketCase(string Name, string Ruleset, IReadOnlyList<PacketSpec> Packets)
{
    /// <summary>
    /// Set by `daemon-refuses "TEXT"`: bpfilter-nft refuses this ruleset on purpose (EOPNOTSUPP),
    /// and TEXT must appear in what it says about it (nft's stderr or bpfilterd's log).
    /// </summary>
    public string? DaemonRefuses { get; init; }

    /// <summary>
    /// Set by `kernel-ruleset <<WORD`: tables loaded with the kernel's own nft in fw on every side (bpfilterd never
    /// sees them), e.g. a prerouting `ct label set` that gives the case's flows labels; deleted before the listing.
    /// </summary>
    public string? KernelRuleset { get; init; }

    /// <summary>`family name` of every table <see cref="KernelRuleset"/> declares (what is deleted afterwards).</summary>
    public IReadOnlyList<string[]> KernelTables => KernelRuleset is null ? []
        : KernelRuleset.Split('\n').Select(l => l.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(w => w.Length >= 3 && w[0] == "table").Select(w => new[] { w[1], w[2] }).ToList();

    /// <summary>`topology bridge` asks for fw bridging its two links; routed otherwise.</summary>
    public TopologyKind Topology { get; init; } = TopologyKind.Routed;

    /// <summary>`route ...` lines: routes fw has while this case runs.</summary>
    public IReadOnlyList<CaseRoute> Routes { get; init; } = [];

    /// <summary>`rule fwmark ...` lines: policy routing rules fw has while this case runs.</summary>
    public IReadOnlyList<CaseRule> Rules { get; init; } = [];

    /// <summary>The packet corpus (one construct per case).</summary>
    public static string Directory => Path.Combine(RepoPaths.RepoRoot, "integration", "corpus", "packets");

    /// <summary>The corpus of whole rulesets as deployments write them (same format).</summary>
    public static string RulesetsDirectory => Path.Combine(RepoPaths.RepoRoot, "integration", "corpus", "rulesets");

    public static IEnumerable<string> AllNames() => NamesIn(Directory);

    public static IEnumerable<string> NamesIn(string directory) =>
        System.IO.Directory.EnumerateFiles(directory, "*.nft").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal);

    public static PacketCase Load(string name) => LoadFrom(Directory, name);

    public static PacketCase LoadFrom(string directory, string name)
    {
        var file = Path.Combine(directory, name + ".nft");
        return Parse(name, File.ReadAllText(file), file);
    }

    public static PacketCase Parse(string name, string text, string source)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        string? ruleset = null, kernelRuleset = null;
        var packets = new List<PacketSpec>();
        string? refuses = null;
        TopologyKind? topology = null;
        var routes = new List<CaseRoute>();
        var rules = new List<CaseRule>();
        for (int i = 0; i < lines.Length;)
        {
            int lineNo = i + 1;
            var line = lines[i++].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            FormatException Fail(string why) => new($"{source}:{lineNo}: {why}");

            if (line.StartsWith("ruleset ") || line.StartsWith("kernel-ruleset "))
            {
                var kernel = line.StartsWith("kernel-");
                if ((kernel ? kernelRuleset : ruleset) != null) throw Fail(kernel ? "a second kernel-ruleset" : "a second ruleset");
                var rest = line[(line.IndexOf(' ') + 1)..].Trim();
                if (!rest.StartsWith("<<") || rest.Length < 3) throw Fail(kernel ? "kernel-ruleset <<WORD" : "ruleset <<WORD");
                var word = rest[2..];
                var body = new List<string>();
                while (true)
                {
                    if (i >= lines.Length) throw Fail($"no line `{word}` ends the ruleset");
                    var l = lines[i++];
                    if (l.Trim() == word) break;
                    body.Add(l);
                }
                if (kernel) kernelRuleset = string.Join('\n', body) + "\n";
                else ruleset = string.Join('\n', body) + "\n";
                continue;
            }
            if (line.StartsWith("packet "))
            {
                packets.Add(ParsePacket(line, lineNo, Fail));
                continue;
            }
            if (line.StartsWith("daemon-refuses "))
            {
                if (refuses != null) throw Fail("a second daemon-refuses");
                var quoted = line["daemon-refuses ".Length..].Trim();
                if (quoted.Length < 3 || quoted[0] != '"' || quoted[^1] != '"' || quoted[1..^1].Contains('"'))
                    throw Fail("daemon-refuses \"TEXT\" (non-empty, quoted)");
                refuses = quoted[1..^1];
                continue;
            }
            if (line.StartsWith("arrives "))
            {
                if (packets.Count == 0 || packets[^1].ArrivesAt != null) throw Fail("`arrives` follows the packet line it belongs to, once");
                packets[^1] = ParseArrival(line, packets[^1], Fail);
                continue;
            }
            if (line.StartsWith("topology "))
            {
                if (topology != null) throw Fail("a second topology");
                topology = line["topology ".Length..].Trim() switch
                {
                    "routed" => TopologyKind.Routed,
                    "bridge" => TopologyKind.Bridge,
                    var t => throw Fail($"topology `{t}`: routed or bridge"),
                };
                continue;
            }
            try
            {
                if (line.StartsWith("route ")) { routes.Add(CaseRoute.Parse(line["route ".Length..])); continue; }
                if (line.StartsWith("rule ")) { rules.Add(CaseRule.Parse(line["rule ".Length..])); continue; }
            }
            catch (FormatException e) { throw Fail(e.Message); }
            catch (OverflowException e) { throw Fail(e.Message); }
            throw Fail($"expected `ruleset <<WORD`, `kernel-ruleset <<WORD`, `packet ...`, `arrives at ...`, `daemon-refuses \"TEXT\"`, `topology ...`, `route ...`, `rule ...` or a # comment, not `{line}`");
        }
        if (ruleset == null) throw new FormatException($"{source}: no ruleset");
        if (packets.Count == 0) throw new FormatException($"{source}: no packet");
        var dup = packets.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new FormatException($"{source}: two packets named {dup.Key}");
        if (topology == TopologyKind.Bridge && routes.Count + rules.Count > 0)
            throw new FormatException($"{source}: route and rule lines need the routed topology");
        return new PacketCase(name, ruleset, packets)
        {
            DaemonRefuses = refuses,
            KernelRuleset = kernelRuleset,
            Topology = topology ?? TopologyKind.Routed,
            Routes = routes,
            Rules = rules,
        };
    }

    /// <summary>arrives at peer|back|fw[: LAYER / LAYER ...] (fields that differ where it arrives).</summary>
    static PacketSpec ParseArrival(string line, PacketSpec packet, Func<string, FormatException> fail)
    {
        var colon = line.IndexOf(':');
        var head = (colon < 0 ? line : line[..colon]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (head.Length != 3 || head[1] != "at") throw fail("arrives at peer|back|fw[: LAYERS]");
        var at = head[2] switch
        {
            "peer" => Observation.Peer,
            "back" => Observation.Back,
            "fw" => Observation.Local,
            _ => throw fail($"arrives at `{head[2]}`: peer, back or fw"),
        };
        if (!packet.ExpectDelivered) throw fail("`arrives` belongs to a packet expected to pass");
        var changes = new List<Layer>();
        if (colon >= 0)
            try
            {
                changes = line[(colon + 1)..].Split('/', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(Layer.Parse).ToList();
            }
            catch (FormatException e) { throw fail(e.Message); }
        foreach (var c in changes)
            if (c.Kind is "eth" or "vlan" or "arp" || packet.Layers.Count(l => l.Kind == c.Kind) != 1)
                throw fail($"arrives: `{c.Kind}` must name one IP or transport layer of the packet");
        return packet with { ArrivesAt = at, ArrivesAs = changes };
    }

    /// <summary>packet NAME from peer|back|fw expect pass|drop: LAYER / LAYER ...</summary>
    static PacketSpec ParsePacket(string line, int lineNo, Func<string, FormatException> fail)
    {
        var colon = line.IndexOf(':');
        if (colon < 0) throw fail("packet NAME from ORIGIN expect pass|drop: LAYERS");
        var head = line[..colon].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (head.Length != 6 || head[2] != "from" || head[4] != "expect")
            throw fail("packet NAME from ORIGIN expect pass|drop: LAYERS");
        var from = head[3] switch
        {
            "peer" => Origin.Peer,
            "back" => Origin.Back,
            "fw" => Origin.Fw,
            _ => throw fail($"origin `{head[3]}`: peer, back or fw"),
        };
        var expect = head[5] switch
        {
            "pass" => true,
            "drop" => false,
            _ => throw fail($"expect `{head[5]}`: pass or drop"),
        };
        try
        {
            var layers = line[(colon + 1)..].Split('/', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(Layer.Parse).ToList();
            return new PacketSpec(head[1], from, expect, layers, lineNo);
        }
        catch (FormatException e)
        {
            throw fail(e.Message);
        }
    }
}
