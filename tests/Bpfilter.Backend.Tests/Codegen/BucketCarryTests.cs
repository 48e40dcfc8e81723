using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// A rule `update @s { ip saddr limit ... }` replaced by one whose list needs more buckets than the set's bucket map was made
/// for (two limits, or a larger `size`): the kernel keeps every element with its own list and its nft_limit clone. The new
/// copies get a larger bucket map (<see cref="ElementLists.SharedBuckets"/> finds no room in the old one) and
/// <see cref="PacketPathCarry"/> copies the buckets into it (<see cref="BucketCarry"/>), then carries after the swap what
/// the old program did to them since the copy. BPF_PROG_TEST_RUN: the "swap" is which program runs the packet.
/// </summary>
public class BucketCarryTests
{
    private static byte[] Tcp4(string src) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, 22);

    static readonly ValueList<Statement> Limit = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 2));
    static readonly ValueList<Statement> TwoLimits = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 3), new LimitStatement(1, TimeSpan.FromHours(1), 5));

    private static Backend.Ir.Set Limited(int size, ValueList<Statement> statements, params ValueList<Statement>[] lists) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = size, PacketStatements = statements, PacketStatementLists = lists.ToValueList(),
        };

    /// <summary>`update @s { ip saddr }` then drop: a packet the update breaks passes.</summary>
    private static readonly Rule Update = new(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16(22))),
        ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(10))), Verdict.Drop);

    private static IReadOnlyList<PacketElementState> State(LoadedProgram p, string addr) =>
        p.LiveElements("s")!.Single(e => new Value(e.Key).ToString() == V4(addr).ToString()).State;

    private static int Buckets(LoadedProgram p) => p.BucketMap("s")!.Keys().Count;

    /// <summary>The replacing program loaded as the enforcer loads it: the old copies' bucket map when it has room, else a new one.</summary>
    private static LoadedProgram Replacing(LoadedProgram before, Backend.Ir.Set set)
    {
        var rs = Ruleset(Xdp, Verdict.Accept, [Update], sets: [set]);
        var compiled = Backend.Codegen.ProgramCompiler.Compile(rs, rs.BaseChains.Items, false);
        return LoadedProgram.Load(compiled, shareBuckets: spec => ElementLists.SharedBuckets(compiled, spec, before, new HashSet<string>()));
    }

    [Theory]
    [InlineData(16, true)] // a list with more limits than the map was made for
    [InlineData(600, false)] // a larger size, the same list
    public void BucketsGoIntoALargerMapWithWhatTheOldProgramDidAfterTheCopy(int size, bool twoLimits)
    {
        var before = Load(Xdp, Verdict.Accept, [Update], sets: [Limited(16, Limit)]);
        LoadedProgram? p = null;
        try
        {
            // .1 spends its bucket (burst 2: the third packet breaks the rule), .2 takes one of its two tokens
            for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
            Assert.Equal(XdpPass, before.Run(Tcp4("198.18.0.1")));
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.2")));
            Assert.Equal(2, Buckets(before));

            p = Replacing(before, twoLimits ? Limited(size, TwoLimits, Limit, TwoLimits) : Limited(size, Limit));
            Assert.False(p.SharesBuckets(before, "s"));
            Assert.True(p.BucketMap("s")!.MaxEntries > before.BucketMap("s")!.MaxEntries);
            var carry = PacketPathCarry.Before(before, p, new Dictionary<string, SetChange>(), new HashSet<string>())!;
            Assert.NotNull(carry);
            Assert.Equal(2, Buckets(p));
            // between the copy and the swap the old program still runs: .2 takes its last token, .4 is made with one taken
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.2")));
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.4")));
            carry.After();
            before.Dispose();
            before = null;
            carry.Sweep();
            Assert.Equal(3, Buckets(p));

            // every element keeps its own list and bucket: .1 and .2 spent, .4 with one token left
            foreach (var spent in new[] { "198.18.0.1", "198.18.0.2" })
            {
                Assert.Equal(Limit[0], Assert.Single(State(p, spent)).Statement);
                Assert.Equal(XdpPass, p.Run(Tcp4(spent)));
            }
            Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.4")));
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.4")));
            Assert.Equal(Limit[0], Assert.Single(State(p, "198.18.0.4")).Statement);
            // a new element gets the new rule's list: burst 3 (and 5) with two limits, else 2
            var burst = twoLimits ? 3 : 2;
            for (var i = 0; i < burst; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.3")));
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.3")));
            Assert.Equal(twoLimits ? 2 : 1, State(p, "198.18.0.3").Count);
            Assert.Equal(twoLimits ? 5 : 4, Buckets(p));
        }
        finally
        {
            before?.Dispose();
            p?.Dispose();
        }
    }

    [Fact]
    public void ABucketTheNewProgramTookSinceTheCopyKeepsItsOwnStateAndABucketOfAnElementNotCarriedIsSwept()
    {
        var before = Load(Xdp, Verdict.Accept, [Update], sets: [Limited(16, Limit)]);
        LoadedProgram? p = null;
        try
        {
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.2")));
            p = Replacing(before, Limited(600, TwoLimits, Limit, TwoLimits));
            // the transaction deletes .2: not carried, its copied bucket goes with the sweep
            var delete = new SetChange("s", [], [SetElement.Exact(V4("198.18.0.2"))]);
            var carry = PacketPathCarry.Before(before, p, new Dictionary<string, SetChange> { ["s"] = delete }, new HashSet<string>())!;
            // the new program takes .1's last token, the old program (still running) does too: .1's bucket in the new map
            // is the new program's (spent), as a carried element the new program changed keeps its own value
            Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1")));
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
            carry.After();
            before.Dispose();
            before = null;
            carry.Sweep();
            Assert.Equal(1, Buckets(p));
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
            Assert.Empty(p.LiveElements("s")!.Where(e => new Value(e.Key).ToString() == V4("198.18.0.2").ToString()));
        }
        finally
        {
            before?.Dispose();
            p?.Dispose();
        }
    }
}
