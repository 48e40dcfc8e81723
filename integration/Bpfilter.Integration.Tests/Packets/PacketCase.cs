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

    public static string Directory => Path.Combine(RepoPaths.RepoRoot, "integration", "corpus", "packets");

    public static IEnumerable<string> AllNames() =>
        System.IO.Directory.EnumerateFiles(Directory, "*.nft").Select(f => Path.GetFileNameWithoutExtension(f)!).Order(StringComparer.Ordinal);

    public static PacketCase Load(string name)
    {
        var file = Path.Combine(Directory, name + ".nft");
        return Parse(name, File.ReadAllText(file), file);
    }

    public static PacketCase Parse(string name, string text, string source)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        string? ruleset = null;
        var packets = new List<PacketSpec>();
        string? refuses = null;
        for (int i = 0; i < lines.Length;)
        {
            int lineNo = i + 1;
            var line = lines[i++].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            FormatException Fail(string why) => new($"{source}:{lineNo}: {why}");

            if (line.StartsWith("ruleset "))
            {
                if (ruleset != null) throw Fail("a second ruleset");
                var rest = line["ruleset ".Length..].Trim();
                if (!rest.StartsWith("<<") || rest.Length < 3) throw Fail("ruleset <<WORD");
                var word = rest[2..];
                var body = new List<string>();
                while (true)
                {
                    if (i >= lines.Length) throw Fail($"no line `{word}` ends the ruleset");
                    var l = lines[i++];
                    if (l.Trim() == word) break;
                    body.Add(l);
                }
                ruleset = string.Join('\n', body) + "\n";
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
            throw Fail($"expected `ruleset <<WORD`, `packet ...`, `daemon-refuses \"TEXT\"` or a # comment, not `{line}`");
        }
        if (ruleset == null) throw new FormatException($"{source}: no ruleset");
        if (packets.Count == 0) throw new FormatException($"{source}: no packet");
        var dup = packets.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new FormatException($"{source}: two packets named {dup.Key}");
        return new PacketCase(name, ruleset, packets) { DaemonRefuses = refuses };
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
