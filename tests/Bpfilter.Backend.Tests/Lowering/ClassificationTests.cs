using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Xunit.Abstractions;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Lowering;

public class ClassificationTests(ITestOutputHelper output)
{
    [Fact]
    public void AMixedRunBecomesOneClassifierAndOtherRulesStay()
    {
        var rules = new List<Rule> { Counted(1, Verdict.Continue, Matcher.Eq(Fields.Tcp.Dport, U16(22))) }; // continue: stays
        for (var i = 0; i < 20; i++)
            rules.Add(Counted((ulong)(10 + i), i % 2 == 0 ? Verdict.Accept : Verdict.Drop,
                Matcher.Prefix(Fields.Ip.Saddr, V4($"10.{i}.0.0"), 16), Matcher.Range(Fields.Udp.Dport, U16(1000), U16((ulong)(1000 + i)))));
        rules.Add(Counted(2, Verdict.Jump("t/sub"), Matcher.Eq(Fields.Ip.Saddr, V4("10.0.0.1")))); // jump: stays
        var rs = Ruleset(Xdp, Verdict.Accept, rules.ToArray(), chains: [new Chain("t/sub", ValueList<Rule>.Empty)]);
        var lowered = new Classification().Run(rs).BaseChains[0].Rules;
        Assert.Equal(3, lowered.Count);
        Assert.Equal(rules[0], lowered[0]);
        Assert.Equal(rules[^1], lowered[2]);
        var c = Assert.IsType<ClassifierVerdict>(lowered[1].Verdict);
        Assert.Equal(20, c.Rules.Count);
        // udp dport is the transport bytes 2-3 plus `meta l4proto 17`; the saddr prefixes are read as two 16-bit halves
        Assert.Equal(4, c.Fields.Count);
        var l4 = c.Fields.Items.IndexOf(Fields.L4Proto);
        Assert.All(c.Rules, r => Assert.Equal(ValueList.Of(new Interval(17, 17)), r.Admits[l4]));
    }

    [Fact]
    public void ALongRunIsCutInChunksToTheEnd()
    {
        var rules = Enumerable.Range(0, 18).Select(i => Counted((ulong)i, Verdict.Drop, Matcher.Range(Fields.Udp.Dport, U16((ulong)i), U16(100)))).ToArray();
        var lowered = new Classification(minRun: 2, maxRules: 8, longRunChunk: 4).Run(Ruleset(Xdp, Verdict.Accept, rules)).BaseChains[0].Rules;
        Assert.Equal([4, 4, 4, 4, 2], lowered.Select(r => Assert.IsType<ClassifierVerdict>(r.Verdict).Rules.Count));
        var whole = new Classification(minRun: 2, maxRules: 18, longRunChunk: 4).Run(Ruleset(Xdp, Verdict.Accept, rules)).BaseChains[0].Rules;
        Assert.Equal(18, Assert.IsType<ClassifierVerdict>(Assert.Single(whole).Verdict).Rules.Count);
    }

    public static TheoryData<string, int, bool> Cases() => new()
    {
        { "xdp", 64, true }, { "xdp", 4096, true }, { "netfilter", 128, true },
        // no negated address prefixes: the addresses are classified as 16-bit halves (ClassifierFieldSplit)
        { "xdp", 4096, false }, { "netfilter", 128, false },
    };

    /// <summary>
    /// Random mixed 5-tuple rules (prefixes, ranges, !=, exact, any; accept/drop/goto; counters), compiled with
    /// and without classification, agree on verdicts and every counter for packets at and around the edges
    /// of the rules' prefixes and ranges, other protocols, IPv6 and non-IP frames.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void ClassifiedAndLinearProgramsAgree(string hook, int maxRules, bool negations)
    {
        var random = new Random(12 + maxRules + (negations ? 0 : 1));
        var h = hook == "xdp" ? Xdp : NfIn4;
        var generated = Enumerable.Range(0, 300).Select(i => RandomRule(random, (ulong)(100 + i), negations)).ToList();
        var gone = new Chain("t/gone", ValueList.Of(Counted(8, Verdict.Drop, Matcher.Eq(Fields.L4Proto, U8(17)))));
        var rs = Ruleset(h, Verdict.Accept, generated.Select(g => g.Rule).ToArray(), chains: [gone]);
        var classified = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: new LoweringPipeline(new Classification(16, maxRules)));
        var plain = ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None);
        var lowered = new Classification(16, maxRules).Run(rs).BaseChains[0].Rules;
        output.WriteLine($"{hook}: 300 rules -> {lowered.Count(r => r.Verdict is ClassifierVerdict)} classifiers + " +
            $"{lowered.Count(r => r.Verdict is not ClassifierVerdict)} rules; {plain.Instructions.Length} instructions linear, {classified.Instructions.Length} classified");
        Assert.Contains(lowered, r => r.Verdict is ClassifierVerdict);
        var halves = lowered.Select(r => r.Verdict).OfType<ClassifierVerdict>().SelectMany(c => c.Fields).Count(f => f is PayloadField { Base: PayloadBase.Network, Bits: 16 });
        output.WriteLine($"{halves} address halves classified");
        if (!negations) Assert.True(halves >= 4, "saddr and daddr are read as halves");
        Assert.Equal(plain.CounterSlots.Keys.Order(), classified.CounterSlots.Keys.Order());

        using var a = LoadedProgram.Load(classified);
        using var b = LoadedProgram.Load(plain);
        var packets = new List<byte[]>();
        foreach (var g in generated)
            for (var k = 0; k < 6; k++) packets.Add(PacketNear(random, g));
        packets.Add(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Tcp(80, 80));
        packets.Add(PacketBuilder.Ether(etherType: 0x0806).Payload(28));
        packets.Add(PacketBuilder.Ether().Ipv4("10.0.0.1", "10.0.0.2").Icmp(8));
        packets.Add(PacketBuilder.Ether().Ipv4("10.0.0.1", "10.0.0.2", fragment: 100).Udp(53, 53));
        var matched = 0;
        foreach (var p in packets)
        {
            var expected = b.Run(p);
            Assert.Equal(expected, a.Run(p));
            if (expected == (hook == "xdp" ? XdpDrop : NfDrop)) matched++;
        }
        output.WriteLine($"{packets.Count} packets, {matched} dropped");
        Assert.InRange(matched, packets.Count / 20, packets.Count - packets.Count / 20); // both verdicts are exercised
        var counted = 0;
        foreach (var id in plain.CounterSlots.Keys)
        {
            Assert.Equal(b.Counter(id), a.Counter(id));
            if (b.Counter(id).Packets > 0) counted++;
        }
        output.WriteLine($"{counted} of {plain.CounterSlots.Count} counters counted");
        Assert.True(counted >= 50, "most packets should hit other rules than the first few");
    }

    [Fact]
    public void AddressesAreSplitInHalvesOnlyWhereEveryRuleAdmitsAProduct()
    {
        static Rule R(ulong id, params Matcher[] m) => Counted(id, Verdict.Drop, m);
        var rules = Enumerable.Range(0, 16).Select(i => R((ulong)i,
            Matcher.Prefix(Fields.Ip.Saddr, U32((0x0a000000u | (uint)i << 16 | (uint)i << 8) & ~(uint.MaxValue >> (8 + i))), 8 + i), // /8 to /23
            Matcher.Ne(Fields.Ip.Daddr, V4($"192.168.0.{i}")))).ToList(); // != : two intervals, daddr stays whole
        rules.Add(R(20, Matcher.Range(Fields.Ip.Saddr, V4("10.1.0.5"), V4("10.1.200.7")))); // inside one /16
        rules.Add(R(21, Matcher.Range(Fields.Ip.Saddr, V4("10.2.0.0"), V4("10.9.255.255")))); // aligned to /16s
        rules.Add(R(22, Matcher.Eq(Fields.L4Proto, U8(6)))); // no address: admitted by either half's absent class
        var lowered = new Classification().Run(Ruleset(Xdp, Verdict.Accept, rules.ToArray())).BaseChains[0].Rules;
        var c = Assert.IsType<ClassifierVerdict>(Assert.Single(lowered).Verdict);
        Field[] expected = [new PayloadField(HeaderProtocol.Ip, PayloadBase.Network, 96, 16), new PayloadField(HeaderProtocol.Ip, PayloadBase.Network, 112, 16),
            Fields.Ip.Daddr, Fields.L4Proto];
        Assert.Equal(expected, c.Fields.Items.ToArray());
        Assert.Equal(ValueList.Of(new Interval(0x0a01, 0x0a01)), c.Rules[16].Admits[0]);
        Assert.Equal(ValueList.Of(new Interval(5, 200 * 256 + 7)), c.Rules[16].Admits[1]);
        Assert.Equal(ValueList.Of(new Interval(0x0a02, 0x0a09)), c.Rules[17].Admits[0]);
        Assert.Equal(ValueList.Of(new Interval(0, 0xffff)), c.Rules[17].Admits[1]);
        Assert.Null(c.Rules[18].Admits[0]);
        Assert.Null(c.Rules[18].Admits[1]);

        rules.Add(R(23, Matcher.Range(Fields.Ip.Saddr, V4("10.1.0.5"), V4("10.2.0.7")))); // across a /16 boundary: not a product
        var whole = new Classification().Run(Ruleset(Xdp, Verdict.Accept, rules.ToArray())).BaseChains[0].Rules;
        Assert.Equal([Fields.Ip.Saddr, Fields.Ip.Daddr, Fields.L4Proto], Assert.IsType<ClassifierVerdict>(Assert.Single(whole).Verdict).Fields.Items.ToArray());
    }

    /// <summary>
    /// Past 4,096 rules a classifier scans several summary words; checked against classifiers of 4,096 rules
    /// and fewer (one summary word, checked against linear programs above): 5,000 rules is too long a linear chain.
    /// </summary>
    [Fact]
    public void OneLargeClassifierAgreesWithChunkedOnes()
    {
        var random = new Random(5000);
        // rules without a protocol would take the packets aimed past rule 4,096
        var generated = Enumerable.Range(0, 5000).Select(i => RandomRule(random, (ulong)(100 + i)))
            .Where(g => g.Rule.Matchers.Any(m => m.Key.Fields[0] is MetaField or PayloadField { Base: PayloadBase.Transport })).Take(4096).ToList();
        // rules past the first summary word on a protocol and addresses the others leave alone, so packets reach them
        static string Late(int i) => $"172.31.{i >> 8}.{i & 255}";
        var late = Enumerable.Range(4096, 904).Select(i => Counted((ulong)(100 + i), i % 2 == 0 ? Verdict.Drop : Verdict.Accept,
            Matcher.Eq(Fields.L4Proto, U8(47)), Matcher.Prefix(Fields.Ip.Saddr, V4(Late(i)), 31 + i % 2)));
        var gone = new Chain("t/gone", ValueList.Of(Counted(8, Verdict.Drop, Matcher.Eq(Fields.L4Proto, U8(17)))));
        var rs = Ruleset(Xdp, Verdict.Accept, [.. generated.Select(g => g.Rule), .. late], chains: [gone]);
        var one = new Classification().Run(rs).BaseChains[0].Rules;
        Assert.Equal(5000, Assert.IsType<ClassifierVerdict>(Assert.Single(one).Verdict).Rules.Count);
        using var a = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        using var b = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items,
            lowering: new LoweringPipeline(new Classification(16, 4096))));
        var counted = 0;
        for (var k = 0; k < 3000; k++)
        {
            var p = k < 1500 ? PacketBuilder.Ether().Ipv4(Late(random.Next(4000, 5100)), "10.0.0.1").Icmp(0, proto: 47)
                : PacketNear(random, generated[random.Next(generated.Count)]);
            var expected = b.Run(p);
            Assert.Equal(expected, a.Run(p));
        }
        foreach (var id in a.Compiled.CounterSlots.Keys)
        {
            Assert.Equal(b.Counter(id), a.Counter(id));
            if (id >= 100 + 4096 && b.Counter(id).Packets > 0) counted++;
        }
        output.WriteLine($"{counted} counters past rule 4096 counted");
        Assert.True(counted >= 100);
    }

    /// <summary>A generated rule and its constraints, to aim packets at its edges.</summary>
    internal sealed record Generated(Rule Rule, (uint From, uint To)? Saddr, (uint From, uint To)? Daddr, int Proto, (int From, int To)? Sport, (int From, int To)? Dport);

    private static readonly string[] Nets = ["10.0.0.0", "10.1.0.0", "10.1.2.0", "192.168.0.0", "192.168.7.128"];

    internal static Generated RandomRule(Random r, ulong counter, bool negations = true)
    {
        var matchers = new List<Matcher>();
        (uint, uint)? Address(Field f)
        {
            if (r.Next(8) == 0) return null;
            var len = new[] { 16, 23, 24, 25, 28, 32, 32 }[r.Next(7)];
            var net = Value.Ipv4(Nets[r.Next(Nets.Length)]).ToUInt64() + (uint)r.Next(4) * 256 + (uint)r.Next(256);
            var host = len == 32 ? 0u : uint.MaxValue >> len;
            var from = (uint)net & ~host;
            var negated = r.Next(8) == 0 && negations;
            matchers.Add(Matcher.Prefix(f, Value.FromUInt(from, 32), len, negated));
            return negated ? null : (from, from | host); // packets aim at the prefix either way
        }
        var saddr = Address(Fields.Ip.Saddr);
        var daddr = Address(Fields.Ip.Daddr);
        var proto = new[] { 6, 6, 6, 17, 17, 17, 1, 1, 1, 0 }[r.Next(10)];
        (int, int)? sport = null, dport = null;
        if (proto is 6 or 17)
        {
            var (s, d) = proto == 6 ? (Fields.Tcp.Sport, Fields.Tcp.Dport) : (Fields.Udp.Sport, Fields.Udp.Dport);
            (int, int)? Port(Field f)
            {
                switch (r.Next(5))
                {
                    case 0: return null;
                    case 1:
                        var p = new[] { 22, 53, 80, 443, 8080 }[r.Next(5)];
                        matchers.Add(Matcher.Eq(f, U16((ulong)p)));
                        return (p, p);
                    case 2:
                        matchers.Add(Matcher.Range(f, U16(1024), U16(65535)));
                        return (1024, 65535);
                    case 3:
                        var lo = r.Next(60000);
                        var hi = lo + r.Next(2000);
                        matchers.Add(Matcher.Range(f, U16((ulong)lo), U16((ulong)hi), negated: r.Next(4) == 0));
                        return (lo, hi);
                    default:
                        var q = new[] { 22, 80, 443 }[r.Next(3)];
                        matchers.Add(Matcher.Ne(f, U16((ulong)q)));
                        return (q, q);
                }
            }
            sport = Port(s);
            dport = Port(d);
            if (matchers.Count == 0 || r.Next(3) == 0) matchers.Add(Matcher.Eq(Fields.L4Proto, U8((ulong)proto)));
        }
        else if (proto == 1) matchers.Add(Matcher.Eq(Fields.L4Proto, U8(1)));
        if (matchers.Count == 0) matchers.Add(Matcher.Prefix(Fields.Ip.Saddr, V4("10.1.0.0"), 16));
        var verdict = r.Next(10) switch { 0 => (Verdict)Verdict.Goto("t/gone"), < 5 => Verdict.Accept, _ => Verdict.Drop };
        return new Generated(Counted(counter, verdict, matchers.ToArray()), saddr, daddr, proto, sport, dport);
    }

    /// <summary>A packet at an edge of the rule's constraints (first, last, one below, one above) or inside them.</summary>
    internal static byte[] PacketNear(Random r, Generated g)
    {
        uint Pick(uint from, uint to) => r.Next(5) switch
        {
            0 => from, 1 => to, 2 => from - 1, 3 => to + 1,
            _ => from + (uint)(r.NextInt64(0, (long)to - from + 1)),
        };
        string Addr((uint From, uint To)? c) =>
            new System.Net.IPAddress(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(
                c is var (f, t) ? Pick(f, t) : Pick(0x0a010000, 0x0a01ffff)))).ToString();
        ushort Port((int From, int To)? c) => (ushort)(c is var (f, t) ? Pick((uint)f, (uint)t) : (uint)r.Next(65536));
        var ip = PacketBuilder.Ether().Ipv4(Addr(g.Saddr), Addr(g.Daddr));
        var proto = r.Next(6) == 0 ? new[] { 6, 17, 1 }[r.Next(3)] : g.Proto;
        return proto switch
        {
            6 => ip.Tcp(Port(g.Sport), Port(g.Dport)),
            17 => ip.Udp(Port(g.Sport), Port(g.Dport)),
            _ => ip.Icmp(8),
        };
    }
}
