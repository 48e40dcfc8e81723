using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Bpfilter.Testing;
using static Bpfilter.Backend.Tests.Codegen.Harness;
using static Bpfilter.Backend.Tests.Lowering.ClassificationTests;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// Issue 12: a classified rule without a matcher on a field is one bit of that field's match-anything vector (the
/// absent class's, which the program ORs into the vector of the class it looked up), not one bit of every class's,
/// past the folded words (before them every class's vector holds it, so most words are read without the OR).
/// The live vector maps hold it so; a rule appended without a matcher on a field writes that one vector of the field;
/// and BPF_PROG_TEST_RUN gives the verdicts of the rules run one by one over random appends and deletes of rules with
/// wildcards, for packets inside and at the edges of the rules and packets lacking the fields (ICMP, IPv6, ARP).
/// </summary>
[Collection("attach")]
public class ClassifierAnyVectorTests
{
    static readonly Chain Gone = new("t/gone", ValueList.Of(Counted(8, Verdict.Drop, Matcher.Eq(Fields.L4Proto, U8(17)))));

    static Ruleset Rules(IEnumerable<Rule> rules) =>
        new(ValueList.Of(new BaseChain("t/edge", EditRig.Xdp, 0, Verdict.Accept, rules.ToValueList())), ValueList.Of(Gone), ValueList<Backend.Ir.Set>.Empty);

    internal static readonly byte[][] Lacking =
    [
        PacketBuilder.Ether().Ipv4("10.1.0.7", "10.1.2.9").Icmp(8),
        PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Udp(53, 53),
        PacketBuilder.Ether(etherType: 0x0806).Payload(28),
    ];

    static bool Has(byte[] vector, int rule) =>
        (BinaryPrimitives.ReadUInt64LittleEndian(vector.AsSpan(8 * (ClassifierLayout.SummaryWords + rule / 64))) & 1UL << (rule % 64)) != 0;

    /// <summary>
    /// Per field of the program's one classifier, the rules without a matcher on it are set in its absent vector, and in
    /// no other past the folded words (<see cref="ClassifierLayout.Folded"/>) but in every other before them.
    /// </summary>
    internal static void AssertWildcardsInTheAnyVectorAlone(LoadedProgram program)
    {
        var record = Assert.Single(program.Compiled.Classifiers);
        var rules = record.Classifier.Rules;
        var folded = 64 * ClassifierLayout.Folded(record.Words);
        for (var d = 0; d < record.Classifier.Fields.Count; d++)
        {
            var (map, _, absent) = record.At.Dimensions[d];
            var vectors = program.Entries(ClassifierTables.VectorMap(map))!;
            var any = vectors.Single(kv => BinaryPrimitives.ReadInt32LittleEndian(kv.Key) == absent).Value;
            for (var r = 0; r < rules.Count; r++)
            {
                var wildcard = rules[r].Admits[d] is null;
                Assert.True(wildcard == Has(any, r), $"field {record.Classifier.Fields[d]}: rule {r} {(wildcard ? "lacks" : "has")} its bit in the match-anything vector");
                if (wildcard && r < folded)
                    Assert.All(vectors, kv => Assert.True(Has(kv.Value, r), $"rule {r}, folded, in class {BinaryPrimitives.ReadInt32LittleEndian(kv.Key)}"));
                else if (wildcard)
                    Assert.DoesNotContain(vectors, kv => BinaryPrimitives.ReadInt32LittleEndian(kv.Key) != absent && Has(kv.Value, r));
            }
        }
    }

    static void AssertAgreesWithLinear(EditRig rig, IEnumerable<byte[]> packets)
    {
        using var linear = LoadedProgram.Load(ProgramCompiler.Compile(rig.Current, rig.Current.BaseChains, lowering: LoweringPipeline.None));
        foreach (var p in packets) Assert.Equal(linear.Run(p), rig.Run(p));
    }

    [Fact]
    public void AnAppendWithoutAMatcherOnAFieldWritesOneVectorOfIt()
    {
        var random = new Random(1401);
        var rules = Enumerable.Range(0, 203).Select(i => RandomRule(random, (ulong)(100 + i), negations: false).Rule).ToList();
        using var rig = new EditRig(Rules([]));
        rig.Enforcer.ChainTails = false; // the classifier edit itself, not the chain tail an append takes first
        rig.Commit(Rules(rules));
        AssertWildcardsInTheAnyVectorAlone(rig.Program);
        var fields = rig.Program.Compiled.Classifiers[0].Classifier.Fields;
        var record = rig.Program.Compiled.Classifiers[0];
        // the classes of the fields the appended rule has no matcher on (destination address halves, source port): main
        // wrote each of their vectors with its bit
        var wildcardClasses = Enumerable.Range(0, fields.Count)
            .Where(d => fields[d] is PayloadField { Base: PayloadBase.Network, OffsetBits: >= 128 } or PayloadField { Base: PayloadBase.Transport, OffsetBits: 0 })
            .Sum(d => rig.Program.Entries(ClassifierTables.VectorMap(record.At.Dimensions[d].Map))!.Count);
        Assert.True(wildcardClasses > 100, $"{wildcardClasses} classes");

        // bench/suite.py's appended rule: constrains the source address, the protocol and the destination port
        var id = rig.ProgramId;
        rules.Add(Counted(5001, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("10.254.0.1")), Matcher.Eq(Fields.Udp.Dport, U16(7))));
        var stats = rig.Commit(Rules(rules));
        Assert.Equal((1, id), (stats.Edited, rig.ProgramId));
        // per field: the vectors of the classes it splits (2 per constrained field: the source address halves, the
        // protocol and the port) and the match-anything vector of the 3 it does not constrain, and its rule entry
        Assert.InRange(stats.MapUpdates, 4, 4 * (2 + 2) + 3 + 1);
        AssertWildcardsInTheAnyVectorAlone(rig.Program);
        AssertAgreesWithLinear(rig, [PacketBuilder.Ether().Ipv4("10.254.0.1", "198.18.0.2").Udp(1234, 7), .. Lacking]);
    }

    [Theory]
    [InlineData(1402, false)] // address fields split into 16-bit halves: class arrays
    [InlineData(1403, true)] // negated prefixes keep address fields whole: LPM tries
    public void VerdictsAreTheLinearRulesOverAppendsAndDeletesOfRulesWithWildcards(int seed, bool negations)
    {
        var random = new Random(seed);
        var generated = Enumerable.Range(0, 64).Select(i => RandomRule(random, (ulong)(100 + i), negations)).ToList();
        using var rig = new EditRig(Rules([]));
        rig.Enforcer.ChainTails = false; // the classifier edit itself, not the chain tail an append takes first
        rig.Commit(Rules(generated.Select(g => g.Rule)));
        Assert.Contains("clsword", rig.Program.Compiled.Disassembly);
        var packets = generated.SelectMany(g => Enumerable.Range(0, 2).Select(_ => PacketNear(random, g))).Concat(Lacking).ToList();
        for (var k = 0; k < 24; k++)
        {
            if (k % 3 == 2)
                generated.RemoveAt(random.Next(generated.Count)); // a full compile diffed against the running tables
            else
            {
                var added = RandomRule(random, (ulong)(1000 + k), negations);
                generated.Add(added);
                packets.AddRange(Enumerable.Range(0, 3).Select(_ => PacketNear(random, added)));
            }
            rig.Commit(Rules(generated.Select(g => g.Rule)));
            AssertWildcardsInTheAnyVectorAlone(rig.Program);
            if (k % 4 == 3) AssertAgreesWithLinear(rig, packets);
        }
        AssertAgreesWithLinear(rig, packets);
    }
}
