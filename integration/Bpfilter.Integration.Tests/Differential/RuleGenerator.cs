using System.Text;
using Bpfilter.Integration.Tests.Packets;

namespace Bpfilter.Integration.Tests.Differential;

/// <summary>Where packets of a scenario go: sender, and the destination (IPv4 and IPv6 alike).</summary>
public sealed record Flow(Origin From, string Dst4, string Dst6, string InDev, string OutDev);

/// <summary>One base chain to test: family, hook (and device for netdev), the flows that cross it.</summary>
public sealed record Scenario(string Family, string Hook, IReadOnlyList<Flow> Flows)
{
    public string Name => $"{Family}/{Hook}";

    public string ChainHeader => Family == "netdev"
        ? $"type filter hook {Hook} device {(Hook == "ingress" ? "fw0" : "fw1")} priority 0; policy accept;"
        : $"type filter hook {Hook} priority 0; policy accept;";

    public bool HasEth => Flows.All(f => f.From != Origin.Fw) && Hook is "ingress" or "prerouting" or "input" or "forward";
    public bool HasIif => Hook is "ingress" or "prerouting" or "input" or "forward";
    public bool HasOif => Hook is "forward" or "output" or "postrouting" or "egress";

    static readonly Flow PeerToBack = new(Origin.Peer, "198.18.2.2", "2001:db8:2::2", "fw0", "fw1");
    static readonly Flow BackToPeer = new(Origin.Back, "198.18.1.2", "2001:db8:1::2", "fw1", "fw0");
    static readonly Flow PeerToFw = new(Origin.Peer, "198.18.1.1", "2001:db8:1::1", "fw0", "lo");
    static readonly Flow PeerToFw1 = new(Origin.Peer, "198.18.2.1", "2001:db8:2::1", "fw0", "lo");
    static readonly Flow FwToBack = new(Origin.Fw, "198.18.2.2", "2001:db8:2::2", "lo", "fw1");
    static readonly Flow FwToPeer = new(Origin.Fw, "198.18.1.2", "2001:db8:1::2", "lo", "fw0");

    public static IReadOnlyList<Scenario> All { get; } = Build();

    static List<Scenario> Build()
    {
        var l = new List<Scenario>();
        foreach (var fam in new[] { "ip", "ip6", "inet" })
        {
            l.Add(new(fam, "prerouting", [PeerToBack, PeerToFw]));
            l.Add(new(fam, "input", [PeerToFw, PeerToFw1]));
            l.Add(new(fam, "forward", [PeerToBack, BackToPeer]));
            l.Add(new(fam, "output", [FwToBack, FwToPeer]));
            l.Add(new(fam, "postrouting", [PeerToBack, FwToBack]));
        }
        l.Add(new("netdev", "ingress", [PeerToBack, PeerToFw]));
        l.Add(new("netdev", "egress", [PeerToBack, FwToBack]));
        return l;
    }
}

/// <summary>
/// A header or meta field the generator writes rules about: its nft name, which packets carry it
/// (IP version 4/6/any and transport), the values a crafted packet can carry (Lo..Hi and Valid),
/// how to read and set it in a <see cref="DiffPacket"/> and how nft spells a value.
/// </summary>
public sealed class Field
{
    public required string Name;
    public string V = "any";   // 4, 6, any
    public string L4 = "any";  // tcp, udp, icmp, icmp6, any
    public int Bits;
    public UInt128 Lo, Hi;
    public required Func<DiffPacket, UInt128> Get;
    public required Action<DiffPacket, UInt128> Set;
    public Func<DiffPacket, Scenario, bool> Valid = (_, _) => true;
    public Func<UInt128, string>? Fmt;
    public Func<Scenario, bool> Applies = _ => true;
    public bool Address, Text, Ordered = true, Eth, Vlan;
    public UInt128[]? Consts, Masks;

    public string F(UInt128 v) => Fmt?.Invoke(v) ?? v.ToString();
}

/// <summary>One generated rule: its match, the declarations it needs, and packets derived from its constants.</summary>
public sealed record GenRule(int Index, string Field, string Form, string Match, string? Verdict, IReadOnlyList<string> Decls, IReadOnlyList<string> SubChains, IReadOnlyList<DiffPacket> Packets)
{
    public string Tag => $"r{Index}";
    public string Kind => $"{Field} {Form}";
    public string Text => $"{Match} counter{(Verdict != null ? " " + Verdict : "")} comment \"{Tag}\"";
}

/// <summary>A chain's worth of generated rules, with the packets, for one scenario.</summary>
public sealed record GenBatch(int Seed, int Number, Scenario Scenario, IReadOnlyList<GenRule> Rules)
{
    public string Ruleset(IEnumerable<GenRule>? only = null)
    {
        var rules = (only ?? Rules).ToList();
        var sb = new StringBuilder();
        sb.AppendLine($"table {Scenario.Family} difft {{");
        foreach (var r in rules) foreach (var d in r.Decls) sb.AppendLine("\t" + d);
        foreach (var r in rules)
            foreach (var c in r.SubChains)
                sb.AppendLine($"\tchain {c} {{\n\t\tcounter comment \"{c}\"\n\t}}");
        sb.AppendLine($"\tchain c {{\n\t\t{Scenario.ChainHeader}");
        foreach (var r in rules) sb.AppendLine("\t\t" + r.Text);
        sb.AppendLine("\t}\n}");
        return sb.ToString();
    }

    public IEnumerable<DiffPacket> Packets(IEnumerable<GenRule>? only = null) => (only ?? Rules).SelectMany(r => r.Packets);

    public string Replay(int? rule = null) =>
        $"BFNT_DIFF_SEED={Seed} BFNT_DIFF_BATCH={Number}{(rule is { } r ? $" BFNT_DIFF_RULE={r}" : "")} dotnet test integration/Bpfilter.Integration.Tests --no-build --filter FullyQualifiedName~DifferentialCampaign";
}

public static class RuleGenerator
{
    static UInt128 Max(int bits) => bits >= 128 ? UInt128.MaxValue : ((UInt128)1 << bits) - 1;

    static Field Num(string name, int bits, Func<DiffPacket, UInt128> get, Action<DiffPacket, UInt128> set, UInt128? lo = null, UInt128? hi = null) =>
        new() { Name = name, Bits = bits, Get = get, Set = set, Lo = lo ?? 0, Hi = hi ?? Max(bits) };

    static readonly UInt128 Client4 = DiffPacket.V4("198.19.0.0"), Client6 = DiffPacket.V6Addr("2001:db8:ff::");

    static bool DataOk(DiffPacket p) => p.DataLen is >= 16 and <= 1400;

    static void SetLen(DiffPacket p, UInt128 v, int fixedPart) => p.DataLen = (int)Math.Clamp((long)(ulong)Math.Min((ulong)v, 100000UL) - fixedPart, -1, 100000);

    static Flow? FlowTo(Scenario s, string dst, bool v6) => s.Flows.FirstOrDefault(f => (v6 ? f.Dst6 : f.Dst4) == dst);

    static void UseFlow(DiffPacket p, Flow f)
    {
        p.From = f.From; p.Dst4 = DiffPacket.V4(f.Dst4); p.Dst6 = DiffPacket.V6Addr(f.Dst6);
        if (f.From == Origin.Fw) { p.EthSrc = p.EthDst = null; p.VlanId = null; }
    }

    static int ProtoOf(DiffPacket p) => p.L4 switch { "tcp" => 6, "udp" => 17, "icmp" => 1, "icmp6" => 58, _ => p.V6 ? 59 : p.Proto };

    static void SetProto(DiffPacket p, UInt128 v)
    {
        p.L4 = (int)v switch { 6 => "tcp", 17 => "udp", 1 => "icmp", 58 => "icmp6", _ => "none" };
        if (p.L4 == "none") p.Proto = (int)v;
    }

    static bool ProtoOk(DiffPacket p, UInt128 v) => (int)v switch
    {
        6 or 17 => true,
        1 => !p.V6,
        58 or 59 => p.V6,
        99 or 253 => !p.V6,
        _ => false,
    };

    static readonly string[] PktTypes = ["host", "broadcast", "multicast", "other"];
    static readonly ulong[] PktTypeMac = [0x020000000101, 0xffffffffffff, 0x01005e000001, 0x020000000909];
    static readonly string[] Devs = ["fw0", "fw1", "lo"];

    public static IReadOnlyList<Field> Fields { get; } = BuildFields();

    static List<Field> BuildFields()
    {
        var f = new List<Field>();
        Field Add(Field x) { f.Add(x); return x; }
        // IPv4
        Add(new Field
        {
            Name = "ip saddr", V = "4", Bits = 32, Address = true, Lo = Client4, Hi = Client4 + 0xffff,
            Get = p => p.Src4, Set = (p, v) => p.Src4 = v, Fmt = v => DiffPacket.FormatAddr(v, false),
        });
        Add(new Field
        {
            Name = "ip daddr", V = "4", Bits = 32, Address = true, Lo = 0, Hi = Max(32),
            Get = p => p.Dst4, Fmt = v => DiffPacket.FormatAddr(v, false),
            Set = (p, v) => p.Dst4 = v,
            Valid = (p, s) => FlowTo(s, DiffPacket.FormatAddr(p.Dst4, false), false) is { } fl && fl.From == p.From,
            Consts = new[] {"198.18.2.2", "198.18.1.1", "198.18.2.1", "198.18.1.2", "198.18.2.0", "198.18.0.0"}.Select(DiffPacket.V4).ToArray(),
        });
        Add(Num("ip protocol", 8, ProtoOf2, SetProto)).V = "4";
        f[^1].Valid = (p, _) => ProtoOk(p, (UInt128)ProtoOf(p)); f[^1].Consts = [6, 17, 1, 99];
        Add(Num("ip ttl", 8, p => (UInt128)p.Ttl, (p, v) => p.Ttl = (int)v, 1, 255)).V = "4";
        Add(Num("ip length", 16, p => (UInt128)p.IpLength, (p, v) => SetLen(p, v, p.IpLength - p.DataLen), 0, 1500)).V = "4";
        f[^1].Valid = (p, _) => DataOk(p) && p.Frags == 0;
        Add(Num("ip id", 16, p => (UInt128)p.Id, (p, v) => p.Id = (int)v)).V = "4";
        Add(Num("ip dscp", 6, p => (UInt128)(p.Tos >> 2), (p, v) => p.Tos = (p.Tos & 3) | ((int)v << 2))).V = "4";
        Add(Num("ip ecn", 2, p => (UInt128)(p.Tos & 3), (p, v) => p.Tos = (p.Tos & ~3) | (int)v)).V = "4";
        Add(Num("ip hdrlength", 4, p => (UInt128)(5 + p.OptionBytes / 4), (p, v) =>
            p.Opts = v <= 5 ? null : "hex:" + string.Concat(Enumerable.Repeat("01", (int)(v - 5) * 4)), 5, 15)).V = "4";
        Add(Num("ip version", 4, p => 4, (p, v) => { }, 4, 4)).V = "4";
        Add(Num("ip frag-off", 16, p => (UInt128)(p.Df != 0 ? 0x4000 : p.Frags == 0 ? 0 : p.Pick switch { "0" => 0x2000, "1" => 0x2001, _ => 0x0004 }),
            (p, v) =>
            {
                p.Df = v == 0x4000 ? 1 : 0;
                (p.Frags, p.Pick) = (int)v switch { 0x2000 => (8, "0"), 0x2001 => (8, "1"), 0x0004 => (8, "4"), _ => (0, null) };
            })).V = "4";
        f[^1].Valid = (p, _) => p.L4 == "udp" && p.DataLen == 32;
        f[^1].Consts = [0, 0x4000, 0x2000, 0x2001, 0x0004, 0x1fff];
        f[^1].Masks = [0x1fff, 0x2000, 0x4000, 0x3fff, 0xffff, 0x6000];
        // IPv6
        Add(new Field
        {
            Name = "ip6 saddr", V = "6", Bits = 128, Address = true, Lo = Client6, Hi = Client6 + ((UInt128)1 << 80) - 1,
            Get = p => p.Src6, Set = (p, v) => p.Src6 = v, Fmt = v => DiffPacket.FormatAddr(v, true),
        });
        Add(new Field
        {
            Name = "ip6 daddr", V = "6", Bits = 128, Address = true, Lo = 0, Hi = Max(128),
            Get = p => p.Dst6, Fmt = v => DiffPacket.FormatAddr(v, true), Set = (p, v) => p.Dst6 = v,
            Valid = (p, s) => FlowTo(s, DiffPacket.FormatAddr(p.Dst6, true), true) is { } fl && fl.From == p.From,
            Consts = new[] {"2001:db8:2::2", "2001:db8:1::1", "2001:db8:2::1", "2001:db8:1::2", "2001:db8:2::", "2001:db8::"}.Select(DiffPacket.V6Addr).ToArray(),
        });
        Add(Num("ip6 nexthdr", 8, ProtoOf2, SetProto)).V = "6";
        f[^1].Valid = (p, _) => ProtoOk(p, (UInt128)ProtoOf(p)) && p.Frags == 0; f[^1].Consts = [6, 17, 58, 59];
        Add(Num("ip6 hoplimit", 8, p => (UInt128)p.Ttl, (p, v) => p.Ttl = (int)v, 1, 255)).V = "6";
        Add(Num("ip6 flowlabel", 20, p => (UInt128)p.Flow, (p, v) => p.Flow = (int)v)).V = "6";
        Add(Num("ip6 length", 16, p => (UInt128)p.IpLength, (p, v) => SetLen(p, v, p.IpLength - p.DataLen), 0, 1500)).V = "6";
        f[^1].Valid = (p, _) => DataOk(p) && p.Frags == 0;
        Add(Num("ip6 dscp", 6, p => (UInt128)(p.Tos >> 2), (p, v) => p.Tos = (p.Tos & 3) | ((int)v << 2))).V = "6";
        // TCP
        Field L4f(string name, string l4, int bits, Func<DiffPacket, UInt128> get, Action<DiffPacket, UInt128> set, UInt128? lo = null, UInt128? hi = null)
        {
            var x = Add(Num(name, bits, get, set, lo, hi));
            x.L4 = l4;
            if (l4 == "icmp") x.V = "4";
            if (l4 == "icmp6") x.V = "6";
            return x;
        }
        L4f("tcp sport", "tcp", 16, p => (UInt128)p.Sport, (p, v) => p.Sport = (int)v, 1, 65535);
        L4f("tcp dport", "tcp", 16, p => (UInt128)p.Dport, (p, v) => p.Dport = (int)v, 1, 65535);
        L4f("tcp flags", "tcp", 8, p => (UInt128)p.Flags, (p, v) => p.Flags = (int)v).Fmt = v => $"0x{(int)v:x2}";
        L4f("tcp window", "tcp", 16, p => (UInt128)p.Win, (p, v) => p.Win = (int)v);
        L4f("tcp sequence", "tcp", 32, p => p.Seq, (p, v) => p.Seq = (uint)v);
        L4f("tcp doff", "tcp", 4, p => 5, (p, v) => { }, 5, 5);
        L4f("udp sport", "udp", 16, p => (UInt128)p.Sport, (p, v) => p.Sport = (int)v, 1, 65535);
        L4f("udp dport", "udp", 16, p => (UInt128)p.Dport, (p, v) => p.Dport = (int)v, 1, 65535);
        L4f("udp length", "udp", 16, p => (UInt128)(8 + p.DataLen), (p, v) => SetLen(p, v, 8), 0, 1500).Valid = (p, _) => DataOk(p) && p.Frags == 0;
        L4f("icmp type", "icmp", 8, p => (UInt128)(p.IcmpType < 0 ? 8 : p.IcmpType), (p, v) => p.IcmpType = (int)v).Consts = [0, 3, 8, 11, 13, 30, 42];
        f[^1].Valid = (p, _) => p.IcmpType is 0 or 3 or 8 or 11 or 12 or 13 or 14 or 30 or 42 or 43 or 99 or -1;
        L4f("icmp code", "icmp", 8, p => (UInt128)p.IcmpCode, (p, v) => p.IcmpCode = (int)v);
        L4f("icmp id", "icmp", 16, p => (UInt128)p.IcmpId, (p, v) => p.IcmpId = (int)v);
        L4f("icmpv6 type", "icmp6", 8, p => (UInt128)(p.IcmpType < 0 ? 128 : p.IcmpType), (p, v) => p.IcmpType = (int)v).Consts = [1, 2, 3, 4, 128, 129, 160];
        f[^1].Valid = (p, _) => p.IcmpType is 1 or 2 or 3 or 4 or 128 or 129 or 150 or 159 or 160 or 161 or 200 or -1;
        L4f("icmpv6 code", "icmp6", 8, p => (UInt128)p.IcmpCode, (p, v) => p.IcmpCode = (int)v);
        // Ethernet and VLAN
        var ethLo = (UInt128)0x020000000000UL;
        Add(new Field
        {
            Name = "ether saddr", Bits = 48, Eth = true, Lo = ethLo, Hi = ethLo + 0xffff, Fmt = v => DiffPacket.FormatMac((ulong)v),
            Get = p => p.EthSrc ?? 0x020000000102, Set = (p, v) => p.EthSrc = (ulong)v, Consts = [0x020000000102, 0x020000000202],
        });
        Add(Num("ether type", 16, p => (UInt128)(p.VlanId != null ? 0x8100 : p.V6 ? 0x86dd : 0x0800), (p, v) =>
        {
            if (v == 0x8100) p.VlanId = 5;
            else { p.VlanId = null; p.V6 = v == 0x86dd; }
        })).Eth = true;
        f[^1].Fmt = v => $"0x{(int)v:x4}"; f[^1].Consts = [0x0800, 0x86dd, 0x8100];
        f[^1].Valid = (p, s) => p.VlanId == null || s.Family == "netdev";
        Add(Num("vlan id", 12, p => (UInt128)(p.VlanId ?? 0), (p, v) => p.VlanId = (int)v)).Vlan = true;
        f[^1].Consts = [0, 1, 5, 100, 4095];
        Add(Num("vlan pcp", 3, p => (UInt128)p.VlanPcp, (p, v) => { p.VlanPcp = (int)v; p.VlanId ??= 0; })).Vlan = true;
        // meta
        Add(Num("meta l4proto", 8, p => (UInt128)ProtoOf(p), SetProto)).Valid = (p, _) => ProtoOk(p, (UInt128)ProtoOf(p));
        f[^1].Consts = [6, 17, 1, 58];
        Add(Num("meta nfproto", 8, p => p.V6 ? 10u : 2u, (p, v) => p.V6 = v == 10)).Applies = s => s.Family == "inet";
        f[^1].Fmt = v => v == 2 ? "ipv4" : v == 10 ? "ipv6" : v.ToString(); f[^1].Consts = [2, 10]; f[^1].Ordered = false;
        f[^1].Valid = (p, _) => p.L4 is not ("icmp" or "icmp6") && p.Proto != 99;
        Add(Num("meta protocol", 16, p => p.V6 ? 0x86ddu : 0x0800u, (p, v) => p.V6 = v == 0x86dd)).Fmt = v => $"0x{(int)v:x4}";
        f[^1].Consts = [0x0800, 0x86dd]; f[^1].Valid = (p, _) => p.L4 is not ("icmp" or "icmp6") && p.Proto != 99;
        f[^1].Applies = s => s.Family is "inet" or "netdev";
        Add(Num("meta length", 16, p => (UInt128)p.IpLength, (p, v) => SetLen(p, v, p.IpLength - p.DataLen), 0, 1500))
            .Valid = (p, _) => DataOk(p) && p.Frags == 0;
        f[^1].Applies = s => s.Hook != "egress";
        Add(Num("meta mark", 32, p => 0, (p, v) => { }, 0, 0)).Consts = [0, 1, 0xff00];
        Add(Num("meta pkttype", 8, p => (UInt128)Array.IndexOf(PktTypeMac, p.EthDst ?? 0x020000000101), (p, v) => p.EthDst = v < 4 ? PktTypeMac[(int)v] : null))
            .Fmt = v => v < 4 ? PktTypes[(int)v] : v.ToString();
        f[^1].Eth = true; f[^1].Ordered = false; f[^1].Consts = [0, 1, 2, 3];
        f[^1].Valid = (p, s) => p.EthDst == null || p.EthDst == 0x020000000101 || s.Hook is "ingress" or "prerouting";
        f[^1].Applies = s => s.Hook is "ingress" or "prerouting" or "input";
        foreach (var (name, iif) in new[] { ("meta iifname", true), ("meta oifname", false), ("meta iif", true) })
        {
            Add(new Field
            {
                Name = name, Bits = 2, Lo = 0, Hi = 2, Text = true, Ordered = false,
                Get = p => (UInt128)Array.IndexOf(Devs, iif ? DevIn(p) : DevOut(p)),
                Set = (p, v) => { }, // packets of interface rules take each flow instead
                Fmt = v => v < 3 ? $"\"{Devs[(int)v]}\"" : name == "meta iif" ? "\"lo\"" : "\"fw9\"",
                Applies = s => (iif ? s.HasIif : s.HasOif) && !(name == "meta iif" && s.Family == "netdev"),
                Consts = [0, 1, 2],
            });
        }
        return f;
    }

    static UInt128 ProtoOf2(DiffPacket p) => (UInt128)ProtoOf(p);

    static string DevIn(DiffPacket p) => p.From == Origin.Fw ? "lo" : p.From == Origin.Peer ? "fw0" : "fw1";

    static string DevOut(DiffPacket p)
    {
        var d = DiffPacket.FormatAddr(p.Dst4, false);
        return d.StartsWith("198.18.1.1") || d == "198.18.2.1" ? "lo" : d == "198.18.1.2" ? "fw0" : "fw1";
    }

    static readonly string[] Forms = ["eq", "ne", "lt", "gt", "le", "ge", "range", "nrange", "prefix", "nprefix", "mask", "nmask", "set", "nset", "named", "vmap", "concat", "jump", "goto", "flagnames", "wildcard"];

    /// <summary>A batch of rules for one scenario, entirely determined by (seed, number).</summary>
    public static GenBatch Batch(int seed, int number, int rules, Scenario? only = null)
    {
        var rng = new Random(unchecked(seed * 1000003 + number * 7919 + 17) & 0x7fffffff); // not HashCode: it is seeded per process
        var scenario = only ?? Scenario.All[rng.Next(Scenario.All.Count)];
        var list = new List<GenRule>();
        for (int i = 0; i < rules; i++)
        {
            var r = Rule(rng, scenario, i, last: i == rules - 1);
            if (r != null) list.Add(r);
        }
        return new GenBatch(seed, number, scenario, list);
    }

    static bool FieldFits(Field f, Scenario s) =>
        f.Applies(s)
        && !(s.Family == "ip" && f.V == "6") && !(s.Family == "ip6" && f.V == "4")
        && !(f.Eth && !s.HasEth) && !(f.Vlan && !(s.Family == "netdev" && s.Hook == "ingress"));

    /// <summary>A default packet carrying the field: IP version and transport as it needs, on one of the scenario's flows.</summary>
    static DiffPacket Base(Random rng, Scenario s, string v, string l4)
    {
        var p = new DiffPacket();
        UseFlow(p, s.Flows[rng.Next(s.Flows.Count)]);
        p.V6 = v == "6" || (v == "any" && s.Family != "ip" && (s.Family == "ip6" || rng.Next(2) == 0));
        p.L4 = l4 != "any" ? l4 : rng.Next(4) switch { 0 => "tcp", 1 => p.V6 ? "icmp6" : "icmp", _ => "udp" };
        p.Src4 = Client4 + (UInt128)rng.Next(1, 0x10000);
        p.Src6 = Client6 + (UInt128)rng.Next(1, 0x10000);
        p.Sport = rng.Next(1024, 65536); p.Dport = rng.Next(1, 1024);
        return p;
    }

    static UInt128 Rand(Random rng, UInt128 lo, UInt128 hi)
    {
        var span = hi - lo;
        if (span == UInt128.MaxValue) return ((UInt128)(ulong)rng.NextInt64() << 64) | (ulong)rng.NextInt64();
        var r = ((UInt128)(ulong)rng.NextInt64() << 64) | (ulong)rng.NextInt64();
        return lo + r % (span + 1);
    }

    static UInt128 Const(Random rng, Field f, DiffPacket b) => rng.Next(5) switch
    {
        0 when f.Consts != null => f.Consts[rng.Next(f.Consts.Length)],
        1 when f.Consts != null => f.Consts[rng.Next(f.Consts.Length)],
        2 => f.Get(b),
        3 => Rand(rng, 0, Max(f.Bits)),
        _ => Rand(rng, f.Lo, f.Hi),
    };

    static GenRule? Rule(Random rng, Scenario s, int index, bool last)
    {
        var fields = Fields.Where(x => FieldFits(x, s)).ToList();
        var f = fields[rng.Next(fields.Count)];
        var b = Base(rng, s, f.V, f.L4);
        var forms = Forms.Where(fm => fm switch
        {
            "lt" or "gt" or "le" or "ge" or "range" or "nrange" => f.Ordered,
            "prefix" or "nprefix" => f.Address,
            "mask" or "nmask" => !f.Text,
            "flagnames" => f.Name == "tcp flags",
            "wildcard" => f.Name.EndsWith("ifname"),
            "concat" => !f.Text,
            _ => true,
        }).ToList();
        var form = forms[rng.Next(forms.Count)];
        var c = Const(rng, f, b);
        var max = Max(f.Bits);
        var cands = new List<UInt128> { c, c + 1, c - 1, f.Get(b) };
        var decls = new List<string>();
        var subs = new List<string>();
        string? verdict = last && rng.Next(2) == 0 ? "drop" : null;
        string tag = $"r{index}";
        string m;
        UInt128 Pick() { var x = Const(rng, f, b); cands.Add(x); cands.Add(x + 1); return x; }
        switch (form)
        {
            case "eq": m = $"{f.Name} {f.F(c)}"; break;
            case "ne": m = $"{f.Name} != {f.F(c)}"; break;
            case "lt": m = $"{f.Name} < {f.F(c)}"; break;
            case "gt": m = $"{f.Name} > {f.F(c)}"; break;
            case "le": m = $"{f.Name} <= {f.F(c)}"; break;
            case "ge": m = $"{f.Name} >= {f.F(c)}"; break;
            case "range":
            case "nrange":
                {
                    var d = Pick();
                    var (lo, hi) = c <= d ? (c, d) : (d, c);
                    if (lo == hi) { if (hi < max) hi++; else lo--; }
                    cands.AddRange([lo - 1, lo, hi, hi + 1]);
                    m = $"{f.Name} {(form == "nrange" ? "!= " : "")}{f.F(lo)}-{f.F(hi)}";
                    break;
                }
            case "prefix":
            case "nprefix":
                {
                    int len = f.Bits == 32 ? (rng.Next(3) == 0 ? rng.Next(0, 33) : rng.Next(14, 33)) : (rng.Next(3) == 0 ? rng.Next(0, 129) : rng.Next(46, 129));
                    var mask = len == 0 ? 0 : max & ~(len == f.Bits ? 0 : (max >> len));
                    var net = c & mask;
                    var bcast = net | (max & ~mask);
                    cands.AddRange([net, net - 1, bcast, bcast + 1, net + (bcast - net) / 2]);
                    m = $"{f.Name} {(form == "nprefix" ? "!= " : "")}{f.F(net)}/{len}";
                    break;
                }
            case "mask":
            case "nmask":
                {
                    var mask = f.Masks != null ? f.Masks[rng.Next(f.Masks.Length)] : Rand(rng, 1, max);
                    var val = c & mask;
                    var low = mask & (~mask + 1);
                    var top = (UInt128)1 << (127 - (int)UInt128.LeadingZeroCount(mask));
                    cands.AddRange([c ^ low, c ^ top, c ^ (~mask & max), f.Get(b) ^ low]);
                    m = $"{f.Name} & {f.F(mask)} {(form == "nmask" ? "!=" : "==")} {f.F(val)}";
                    break;
                }
            case "flagnames":
                {
                    string[] names = ["fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"];
                    int mask = rng.Next(1, 256), val = mask & rng.Next(256);
                    string N(int x) => x == 0 ? "0x0" : string.Join('|', Enumerable.Range(0, 8).Where(i => (x & (1 << i)) != 0).Select(i => names[i]));
                    cands.AddRange([(UInt128)val, (UInt128)(val ^ (mask & -mask)), (UInt128)(val | (~mask & 0xff)), (UInt128)(val ^ 0x12)]);
                    m = $"tcp flags & ({N(mask)}) {(rng.Next(3) == 0 ? "!=" : "==")} {(val == 0 ? "0x0" : N(val))}";
                    break;
                }
            case "wildcard": m = $"{f.Name} {(rng.Next(2) == 0 ? "!= " : "")}\"fw*\""; break;
            case "set":
            case "nset":
            case "named":
                {
                    var iv = new List<(UInt128 Lo, UInt128 Hi)> { (c, c) };
                    bool interval = false;
                    for (int k = rng.Next(0, 4); k > 0; k--)
                    {
                        var x = Pick();
                        var y = x;
                        if (f.Ordered && rng.Next(3) == 0 && x < max)
                        {
                            y = x + (UInt128)rng.Next(1, 20);
                            if (y > max) y = max;
                            cands.AddRange([y, y + 1, x - 1]);
                        }
                        // nft refuses overlapping elements (and merges adjacent ones): keep only disjoint ones
                        if (iv.Any(e => !((y < max && y + 1 < e.Lo) || (e.Hi < max && e.Hi + 1 < x)))) continue;
                        if (y > x) interval = true;
                        iv.Add((x, y));
                    }
                    var elems = iv.Select(e => e.Lo == e.Hi ? f.F(e.Lo) : $"{f.F(e.Lo)}-{f.F(e.Hi)}").ToList();
                    var body = string.Join(", ", elems);
                    if (form == "named")
                    {
                        decls.Add($"set s{index} {{ typeof {f.Name}; {(interval ? "flags interval; " : "")}elements = {{ {body} }} }}");
                        m = $"{f.Name} {(rng.Next(4) == 0 ? "!= " : "")}@s{index}";
                    }
                    else m = $"{f.Name} {(form == "nset" ? "!= " : "")}{{ {body} }}";
                    break;
                }
            case "vmap":
                {
                    var d = Pick();
                    if (d == c) d = c + 1 <= max ? c + 1 : c - 1;
                    subs.AddRange([$"{tag}_a", $"{tag}_b"]);
                    var dv = rng.Next(3) == 0 ? "drop" : $"goto {tag}_b";
                    bool named = rng.Next(3) == 0;
                    var body = $"{f.F(c)} : jump {tag}_a, {f.F(d)} : {dv}";
                    if (named)
                    {
                        decls.Add($"map m{index} {{ typeof {f.Name} : verdict; elements = {{ {body} }} }}");
                        return new GenRule(index, f.Name, form, $"{f.Name} vmap @m{index}", null, decls, subs, Packets(rng, s, f, b, cands)) with { };
                    }
                    return new GenRule(index, f.Name, form, $"{f.Name} vmap {{ {body} }}", null, decls, subs, Packets(rng, s, f, b, cands));
                }
            case "concat":
                {
                    var others = Fields.Where(g => g != f && !g.Text && FieldFits(g, s) && Compatible(f, g) && g.Name != "meta nfproto").ToList();
                    if (others.Count == 0) { m = $"{f.Name} {f.F(c)}"; form = "eq"; break; }
                    var g = others[rng.Next(others.Count)];
                    var gc = Const(rng, g, b);
                    var gb = b.Clone(); g.Set(gb, gc);
                    var elems = new List<string> { $"{f.F(c)} . {g.F(gc)}", $"{f.F(f.Get(b))} . {g.F(g.Get(b))}" }.Distinct();
                    m = $"{f.Name} . {g.Name} {{ {string.Join(", ", elems)} }}";
                    var pk = Packets(rng, s, f, b, cands).ToList();
                    if (g.Valid(gb, s)) foreach (var v in new[] { c, c + 1 }) { var q = gb.Clone(); f.Set(q, v); if (Ok(f, q, s, v)) pk.Add(q); }
                    return new GenRule(index, $"{f.Name} . {g.Name}", form, m, verdict, decls, subs, pk.Take(9).ToList());
                }
            case "jump":
            case "goto":
                subs.Add($"{tag}_a");
                m = $"{f.Name} {(rng.Next(3) == 0 ? "!= " : "")}{f.F(c)}";
                verdict = $"{form} {tag}_a";
                break;
            default: throw new InvalidOperationException(form);
        }
        return new GenRule(index, f.Name, form, m, verdict, decls, subs, Packets(rng, s, f, b, cands));
    }

    static bool Compatible(Field f, Field g) =>
        (f.V == "any" || g.V == "any" || f.V == g.V) && (f.L4 == "any" || g.L4 == "any" || f.L4 == g.L4)
        && !(f.L4 != "any" && g.Name is "ip protocol" or "ip6 nexthdr" or "meta l4proto")
        && !(g.L4 != "any" && f.Name is "ip protocol" or "ip6 nexthdr" or "meta l4proto")
        && !(f.Eth && g.V != "any") && !(g.Eth && f.V != "any")
        && !(f.Name.StartsWith("meta") && g.Name.StartsWith("meta")) && g.Name != "meta protocol" && !g.Eth && !g.Vlan;

    static bool Ok(Field f, DiffPacket q, Scenario s, UInt128 v) =>
        v >= f.Lo && v <= f.Hi && f.Valid(q, s) && f.Get(q) == v && DataOk(q) && Fix(f, q, s);

    /// <summary>The interface fields choose the flow; everything else keeps the packet's flow.</summary>
    static bool Fix(Field f, DiffPacket q, Scenario s)
    {
        if (!f.Text) return q.From != Origin.Fw || (q.EthSrc == null && q.EthDst == null && q.VlanId == null);
        return true;
    }

    /// <summary>
    /// The packets for a rule: the field set to each candidate value the crafter can carry, the base
    /// packet, the other IP version or transport, the first and a later fragment, and at netdev
    /// ingress a priority-tagged and a VLAN-tagged copy.
    /// </summary>
    static List<DiffPacket> Packets(Random rng, Scenario s, Field f, DiffPacket b, List<UInt128> cands)
    {
        var list = new List<DiffPacket>();
        var seen = new HashSet<string>();
        void Add(DiffPacket q) { if (list.Count < 8 && seen.Add(q.Line())) list.Add(q); }
        if (f.Text)
        {
            // interface names: one packet per flow of the scenario
            foreach (var fl in s.Flows) { var q = b.Clone(); UseFlow(q, fl); Add(q); }
            return list;
        }
        foreach (var v in cands.Distinct().Take(12))
        {
            if (v < f.Lo || v > f.Hi) continue;
            var q = b.Clone();
            try { f.Set(q, v); } catch (Exception e) when (e is OverflowException or ArgumentException) { continue; }
            if (Ok(f, q, s, v)) Add(q);
        }
        if (list.Count == 0) Add(b);
        var first = list[0];
        // the other IP version / transport
        var o = first.Clone();
        if (f.V == "any" && s.Family is "inet" or "netdev") { o.V6 = !o.V6; if (o.L4 is "icmp" or "icmp6") o.L4 = o.V6 ? "icmp6" : "icmp"; if (o.L4 == "none") o.L4 = "udp"; Add(o); }
        else if (f.L4 != "any") { o.L4 = f.L4 == "udp" ? "tcp" : "udp"; Add(o); }
        else if (s.Family == "ip") { o.V6 = true; if (o.L4 is "icmp" or "none") o.L4 = "udp"; Add(o); }
        // fragments (first, a later one) of a packet that matched or not
        if (first.Frags == 0 && first.From != Origin.Fw && rng.Next(2) == 0 && first.L4 is "udp" or "tcp")
        {
            var fr = first.Clone(); fr.Frags = 8; fr.DataLen = 32; fr.Pick = "0"; Add(fr);
            var f2 = fr.Clone(); f2.Pick = "1"; Add(f2);
        }
        if (s.Family == "netdev" && s.Hook == "ingress" && first.VlanId == null && rng.Next(2) == 0)
        {
            var t = first.Clone(); t.VlanId = 0; t.VlanPcp = 3; Add(t);
            var t2 = first.Clone(); t2.VlanId = 7; Add(t2);
        }
        return list;
    }
}
