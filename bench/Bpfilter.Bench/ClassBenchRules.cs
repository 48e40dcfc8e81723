using System.Buffers.Binary;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Bench;

/// <summary>
/// A ClassBench-style ACL (after the shape of ClassBench's acl1 seed, Taylor and Turner 2007): rules on
/// ip saddr/daddr prefixes, protocol and ports, each with a counter, accept or drop, seeded.
/// Distributions (per rule):
/// - saddr prefix length: any 10%, /8 3%, /16 12%, /24 35%, /32 40%; daddr: any 5%, /16 10%, /24 30%, /32 55%.
///   Addresses come from 64 /16 "sites" (10.0.0.0/10 and 172.16.0.0/12 style), so prefixes nest as in real ACLs.
/// - protocol: tcp 70%, udp 20%, icmp 5%, any 5% (`meta l4proto`, or implied by the ports).
/// - sport (tcp/udp): any 85%, 1024-65535 10%, exact 5%; dport: exact 60% (a well-known port 70% of
///   those), any 15%, 1024-65535 10%, an arbitrary range 15%.
/// - verdict: accept 50%, drop 50%.
/// Packets are aimed at a random rule (a random address in each prefix, a port in each range), so
/// they exercise every part of the table; the first rule admitting them decides, as in nf_tables.
/// </summary>
internal sealed class ClassBenchRules
{
    private static readonly int[] WellKnown = [22, 25, 53, 80, 110, 123, 143, 443, 993, 3306, 5432, 8080];

    private readonly Random _random;
    private readonly uint[] _sites;

    public ClassBenchRules(int seed)
    {
        _random = new Random(seed);
        _sites = Enumerable.Range(0, 64).Select(i => (uint)(i < 32 ? 0x0a000000 + (i << 16) : 0xac100000 + ((i - 32) << 16))).ToArray();
    }

    /// <summary>One rule's constraints, to aim packets at it.</summary>
    public sealed record Spec(Rule Rule, (uint From, uint To) Saddr, (uint From, uint To) Daddr, int Proto, (int From, int To) Sport, (int From, int To) Dport);

    public List<Spec> Rules(int count) => Enumerable.Range(0, count).Select(i => Next((ulong)i)).ToList();

    private int Percent() => _random.Next(100);

    private (uint, uint) Prefix(List<Matcher> matchers, Field field, (int Percent, int Length)[] lengths)
    {
        var roll = Percent();
        var length = lengths.First(l => (roll -= l.Percent) < 0).Length;
        if (length < 0) return (0, uint.MaxValue);
        var address = _sites[_random.Next(_sites.Length)] | (uint)_random.Next(1 << 16);
        var host = length == 32 ? 0 : uint.MaxValue >> length;
        var from = address & ~host;
        matchers.Add(Matcher.Prefix(field, Value.FromUInt(from, 32), length));
        return (from, from | host);
    }

    private (int, int) Port(List<Matcher> matchers, Field field, bool destination)
    {
        var roll = Percent();
        (int From, int To) range = destination
            ? roll switch
            {
                < 42 => (WellKnown[_random.Next(WellKnown.Length)], 0),
                < 60 => (_random.Next(1024, 65536), 0),
                < 75 => (0, 65535),
                < 85 => (1024, 65535),
                _ => (_random.Next(0, 60000), -1),
            }
            : roll switch { < 85 => (0, 65535), < 95 => (1024, 65535), _ => (_random.Next(1024, 65536), 0) };
        if (range.To == 0) range.To = range.From;
        if (range.To == -1) range.To = range.From + _random.Next(1, 4096);
        if (range == (0, 65535)) return range;
        matchers.Add(range.From == range.To
            ? Matcher.Eq(field, Value.FromUInt((ulong)range.From, 16))
            : Matcher.Range(field, Value.FromUInt((ulong)range.From, 16), Value.FromUInt((ulong)range.To, 16)));
        return range;
    }

    private Spec Next(ulong counter)
    {
        var matchers = new List<Matcher>();
        var saddr = Prefix(matchers, Fields.Ip.Saddr, [(10, -1), (3, 8), (12, 16), (35, 24), (40, 32)]);
        var daddr = Prefix(matchers, Fields.Ip.Daddr, [(5, -1), (10, 16), (30, 24), (55, 32)]);
        var roll = Percent();
        var proto = roll < 70 ? 6 : roll < 90 ? 17 : roll < 95 ? 1 : 0;
        (int, int) sport = (0, 65535), dport = (0, 65535);
        if (proto is 6 or 17)
        {
            var tcp = proto == 6;
            sport = Port(matchers, tcp ? Fields.Tcp.Sport : Fields.Udp.Sport, destination: false);
            dport = Port(matchers, tcp ? Fields.Tcp.Dport : Fields.Udp.Dport, destination: true);
            if (sport == (0, 65535) && dport == (0, 65535)) matchers.Add(Matcher.Eq(Fields.L4Proto, Value.FromUInt((ulong)proto, 8)));
        }
        else if (proto == 1) matchers.Add(Matcher.Eq(Fields.L4Proto, Value.FromUInt(1, 8)));
        if (matchers.Count == 0) matchers.Add(Matcher.Prefix(Fields.Ip.Saddr, Value.FromUInt(saddr.Item1, 32), 0));
        var verdict = _random.Next(2) == 0 ? (Verdict)Verdict.Accept : Verdict.Drop;
        return new Spec(new Rule(matchers.ToValueList(), verdict, counter), saddr, daddr, proto, sport, dport);
    }

    /// <summary>An Ethernet/IPv4 frame aimed at the rule (tcp, udp or icmp as it says; tcp when it takes any).</summary>
    public byte[] PacketFor(Spec s)
    {
        uint Pick((uint From, uint To) r) => (uint)_random.NextInt64(r.From, (long)r.To + 1);
        var proto = s.Proto == 0 ? 6 : s.Proto;
        var f = new byte[64];
        f[0] = 2; f[6] = 2; f[12] = 0x08; f[14] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), 50);
        f[22] = 64; f[23] = (byte)proto;
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(26), Pick(s.Saddr));
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(30), Pick(s.Daddr));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(34), (ushort)Pick(((uint)s.Sport.From, (uint)s.Sport.To)));
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(36), (ushort)Pick(((uint)s.Dport.From, (uint)s.Dport.To)));
        if (proto == 6) f[46] = 0x50;
        return f;
    }
}
