using System.Globalization;
using System.Net;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>Where a crafted packet is sent from (see <see cref="Topology"/>).</summary>
public enum Origin
{
    /// <summary>An Ethernet frame put on the wire by peer (pe0 → fw0).</summary>
    Peer,
    /// <summary>An Ethernet frame put on the wire by back (bk0 → fw1).</summary>
    Back,
    /// <summary>An IP packet sent by fw's own stack (raw socket): it takes fw's output path.</summary>
    Fw,
}

/// <summary>One header of a packet line, e.g. `udp sport=1000 dport=53`: a kind and its fields.</summary>
public sealed record Layer(string Kind, IReadOnlyDictionary<string, string> Fields, string Source)
{
    public static readonly string[] Kinds =
        ["eth", "vlan", "arp", "ip4", "ip6", "hbh", "rt", "dstopt", "frag6", "tcp", "udp", "icmp", "icmp6", "data"];

    static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["eth"] = ["src", "dst"],
        ["vlan"] = ["id", "pcp", "dei", "tpid"],
        ["arp"] = ["op", "sha", "spa", "tha", "tpa"],
        ["ip4"] = ["src", "dst", "ttl", "tos", "id", "df", "opts", "frags", "pick", "proto"],
        ["ip6"] = ["src", "dst", "hlim", "tc", "flow", "frags", "pick"],
        ["hbh"] = ["len"],
        ["dstopt"] = ["len"],
        ["rt"] = ["type", "segleft"],
        ["frag6"] = ["id"],
        ["tcp"] = ["sport", "dport", "flags", "seq", "ack", "win"],
        ["udp"] = ["sport", "dport"],
        ["icmp"] = ["type", "code", "id", "seq"],
        ["icmp6"] = ["type", "code", "id", "seq"],
        ["data"] = ["len"],
    };

    /// <summary>Parses `kind key=value ...`; unknown kinds and keys are errors.</summary>
    public static Layer Parse(string text)
    {
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length == 0) throw new FormatException("empty layer");
        var kind = words[0];
        if (!Allowed.TryGetValue(kind, out var keys))
            throw new FormatException($"unknown layer `{kind}` (known: {string.Join(", ", Kinds)})");
        var fields = new Dictionary<string, string>();
        foreach (var w in words.Skip(1))
        {
            var eq = w.IndexOf('=');
            if (eq <= 0) throw new FormatException($"`{w}` in `{text}` is not key=value");
            var key = w[..eq];
            if (!keys.Contains(key)) throw new FormatException($"`{kind}` has no field `{key}` (fields: {string.Join(", ", keys)})");
            if (!fields.TryAdd(key, w[(eq + 1)..])) throw new FormatException($"`{key}` given twice in `{text}`");
        }
        return new Layer(kind, fields, text);
    }

    public bool Has(string key) => Fields.ContainsKey(key);

    /// <summary>This layer with the fields of <paramref name="changes"/> (a layer of the same kind) replacing its own.</summary>
    public Layer With(Layer changes)
    {
        var fields = new Dictionary<string, string>(Fields);
        foreach (var (k, v) in changes.Fields) fields[k] = v;
        return new Layer(Kind, fields, $"{Kind} {string.Join(' ', fields.Select(kv => $"{kv.Key}={kv.Value}"))}");
    }

    public string? Text(string key) => Fields.TryGetValue(key, out var v) ? v : null;

    /// <summary>An unsigned number, decimal or 0x-hex, at most <paramref name="max"/>.</summary>
    public long Number(string key, long fallback, long max)
    {
        if (!Fields.TryGetValue(key, out var v)) return fallback;
        long n;
        bool ok = v.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(v[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out n)
            : long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out n);
        if (!ok || n < 0 || n > max) throw new FormatException($"`{Source}`: {key}={v} is not a number in 0..{max}");
        return n;
    }

    public IPAddress Address(string key, System.Net.Sockets.AddressFamily family)
    {
        if (!Fields.TryGetValue(key, out var v)) throw new FormatException($"`{Source}` needs {key}=ADDRESS");
        if (!IPAddress.TryParse(v, out var a) || a.AddressFamily != family)
            throw new FormatException($"`{Source}`: {key}={v} is not an {(family == System.Net.Sockets.AddressFamily.InterNetwork ? "IPv4" : "IPv6")} address");
        return a;
    }

    public byte[] Mac(string key, byte[] fallback)
    {
        if (!Fields.TryGetValue(key, out var v)) return fallback;
        var parts = v.Split(':');
        if (parts.Length != 6) throw new FormatException($"`{Source}`: {key}={v} is not a MAC address");
        return parts.Select(p => byte.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
    }
}

/// <summary>
/// One packet of a case: `packet NAME from ORIGIN expect pass|drop: LAYER / LAYER / ...`.
/// Expect is the kernel's outcome (checked on the reference side), so the corpus documents itself
/// and a crafter bug that loses every packet cannot make both sides agree by accident.
/// </summary>
public sealed record PacketSpec(string Name, Origin From, bool ExpectDelivered, IReadOnlyList<Layer> Layers, int Line)
{
    /// <summary>Set by an `arrives at ...` line: where the packet is delivered, overriding the rule by destination address.</summary>
    public Observation? ArrivesAt { get; init; }

    /// <summary>
    /// Header fields the packet carries where it arrives (NAT rewrites them), each layer overriding
    /// the fields of the sent layer of the same kind; empty when it arrives as sent.
    /// </summary>
    public IReadOnlyList<Layer> ArrivesAs { get; init; } = [];

    public override string ToString() =>
        $"{Name} (line {Line}) from {From.ToString().ToLowerInvariant()}: {string.Join(" / ", Layers.Select(l => l.Source))}" +
        (ArrivesAt is { } at ? $" arriving at {at.ToString().ToLowerInvariant()}" + (ArrivesAs.Count > 0 ? ": " + string.Join(" / ", ArrivesAs.Select(l => l.Source)) : "") : "");
}
