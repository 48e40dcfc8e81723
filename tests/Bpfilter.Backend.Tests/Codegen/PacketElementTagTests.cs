using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Elements that keep the statement list of the rule that made them (nft_dynset_new clones it into the element; every
/// dynset and lookup that finds the element runs that list, nft_set_elem_update_expr): a set whose elements carry
/// several lists (<see cref="Backend.Ir.Set.PacketStatementLists"/>), each element's tag naming its own. The sequence
/// is the first part of scripts/measure-dynset-statement-lists.sh: `update @s { ip saddr counter }` makes an element,
/// then the rule is replaced by one giving new elements `limit rate 1/hour burst 2 packets`; the replacing program
/// starts with the element as the replaced one left it (copied as PacketPathCarry copies it).
/// </summary>
public class PacketElementTagTests
{
    private static byte[] Tcp4(string src, ushort dport = 22) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport);

    static readonly ValueList<Statement> Counter = ValueList.Of<Statement>(new CounterStatement(0));
    static readonly ValueList<Statement> Limit = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 2));

    private static Backend.Ir.Set Metered(ValueList<Statement> statements, params ValueList<Statement>[] lists) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = statements, PacketStatementLists = lists.ToValueList(),
        };

    /// <summary>`update @s { ip saddr }` (the set's statements for new elements) then drop: a packet the update breaks passes.</summary>
    private static Rule Update(params Matcher[] m) =>
        new(m.ToValueList(), ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(10))), Verdict.Drop);

    private static Rule Delete(params Matcher[] m) =>
        new(m.ToValueList(), ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Delete, "s", Fields.Ip.Saddr, null)), Verdict.Accept);

    private static readonly Matcher Port22 = Matcher.Eq(Fields.Tcp.Dport, U16(22)), Port23 = Matcher.Eq(Fields.Tcp.Dport, U16(23)),
        Port24 = Matcher.Eq(Fields.Tcp.Dport, U16(24));

    private static IReadOnlyList<PacketElementState> State(LoadedProgram p, string addr) =>
        p.LiveElements("s")!.Single(e => new Value(e.Key).ToString() == V4(addr).ToString()).State;

    private static int Buckets(LoadedProgram p) => p.BucketMap("s")!.Keys().Count;

    /// <summary>The live copy's elements of <paramref name="from"/> written to both copies of <paramref name="to"/>, values zero-padded to its size (what the carry does).</summary>
    private static void Carry(LoadedProgram from, LoadedProgram to)
    {
        var live = from.SetMap("s")!;
        foreach (var key in live.Keys())
        {
            var value = new byte[live.ValueSize];
            Assert.True(live.TryLookup(key, value));
            var wide = new byte[to.SetMap("s")!.ValueSize];
            value.CopyTo(wide, 0);
            foreach (var copy in new[] { 0, 1 }) to.SetMapCopy("s", copy)!.Update(key, wide);
        }
    }

    [Fact]
    public void AReplacedRulesElementKeepsItsCounterAndNeverRunsTheNewLimitWhileANewElementGetsTheLimit()
    {
        using var before = Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Counter)]);
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
        var length = State(before, "198.18.0.1")[0].Bytes / 2;

        using var p = Load(Xdp, Verdict.Accept, [Drop(Port23, Matcher.InSet(Fields.Ip.Saddr, "s")), Update(Port22)],
            sets: [Metered(Limit, Counter, Limit)]);
        Carry(before, p);
        // three more packets to .1: its counter counts them, the new limit (burst 2) never runs on it
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1")));
        var one = Assert.Single(State(p, "198.18.0.1"));
        Assert.Equal(new CounterStatement(0), one.Statement);
        Assert.Equal((5UL, 5 * length), (one.Packets, one.Bytes));
        // a new element gets the new rule's limit: its third packet breaks the rule
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.3")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.3")));
        Assert.Equal(Limit[0], Assert.Single(State(p, "198.18.0.3")).Statement);
        Assert.Equal(1, Buckets(p));
        // a lookup runs each element's own list: .1's counter counts, .3's limit (spent) breaks the lookup
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 23)));
        Assert.Equal(6UL, State(p, "198.18.0.1")[0].Packets);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.3", 23)));
        // both copies hold each element alike
        foreach (var addr in new[] { "198.18.0.1", "198.18.0.3" })
        {
            var v0 = new byte[p.SetMapCopy("s", 0)!.ValueSize];
            var v1 = new byte[v0.Length];
            Assert.True(p.SetMapCopy("s", 0)!.TryLookup(V4(addr).Bytes.AsSpan(), v0));
            Assert.True(p.SetMapCopy("s", 1)!.TryLookup(V4(addr).Bytes.AsSpan(), v1));
            Assert.Equal(v0, v1);
        }
    }

    [Fact]
    public void ACarriedElementKeepsItsBucketInTheSharedMapAndASweepKeepsEveryBucketAnyCopiesHold()
    {
        var before = Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Limit)]);
        LoadedProgram? p = null;
        try
        {
            // .1 spends its bucket (burst 2: the third packet breaks the rule), .2 takes one packet
            for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
            Assert.Equal(XdpPass, before.Run(Tcp4("198.18.0.1")));
            Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.2")));

            // the rule replaced by one giving a counter: a new value layout, so other copies, taking the old copies' bucket map
            var rs = Ruleset(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Counter, Limit, Counter)]);
            p = LoadedProgram.Load(Backend.Codegen.ProgramCompiler.Compile(rs, rs.BaseChains.Items, false), shareBuckets: _ => before.Buckets("s"));
            Assert.False(p.SharesSet(before, "s"));
            Assert.True(p.SharesBuckets(before, "s"));
            var carry = Backend.Enforcement.PacketPathCarry.Before(before, p, new Dictionary<string, Backend.Enforcement.SetChange>(), new HashSet<string>())!;
            // .1 keeps its limit and its spent bucket; a new element gets the counter and no bucket
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
            Assert.Equal(Limit[0], Assert.Single(State(p, "198.18.0.1")).Statement);
            Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.3")));
            Assert.Equal(new CounterStatement(0), Assert.Single(State(p, "198.18.0.3")).Statement);
            Assert.Equal(2, Buckets(p));

            // .2 gone from the new copies: its bucket stays while the old copies hold it, and goes once they are gone
            p.DeletePacketPath("s", V4("198.18.0.2").Bytes.ToArray());
            Assert.Equal(0, p.Buckets("s")!.Sweep());
            Assert.Equal(2, Buckets(p));
            before.Dispose();
            before = null!;
            carry.Sweep();
            Assert.Equal(1, Buckets(p));
            // .1's bucket is still its own, spent
            Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
        }
        finally
        {
            before?.Dispose();
            p?.Dispose();
        }
    }

    [Fact]
    public void DeletingOrReplacingAnElementTakesOnlyItsOwnListsBucketsAndAReplacementGetsTheNewList()
    {
        using var before = Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Counter)]);
        Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
        using var p = Load(Xdp, Verdict.Accept, [Delete(Port24), Update(Port22)], sets: [Metered(Limit, Counter, Limit)]);
        Carry(before, p);
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.3")));
        Assert.Equal(1, Buckets(p));
        // `delete @s` of the counter's element leaves .3's bucket alone
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 24)));
        Assert.Equal(1, Buckets(p));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.3"))); // its bucket is still spent
        // made anew, .1 gets the new list: the limit's burst of 2
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
        Assert.Equal(Limit[0], Assert.Single(State(p, "198.18.0.1")).Statement);
        Assert.Equal(2, Buckets(p));
        // the sweep after a control-plane delete of .3 takes its bucket and keeps the bucket of .1, which lives
        p.UpdateMap("set:s", [], [V4("198.18.0.3").Bytes.ToArray()]);
        Assert.Equal(1, Buckets(p));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
        // `delete @s` of a limit's element takes its bucket
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 24)));
        Assert.Equal(0, Buckets(p));
    }

    [Fact]
    public void AnOldElementExpiredIsReplacedWithTheNewList()
    {
        using var before = Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Counter)]);
        Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
        using var p = Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Limit, Counter, Limit)]);
        Carry(before, p);
        var key = V4("198.18.0.1").Bytes.ToArray();
        foreach (var copy in new[] { 0, 1 })
        {
            var map = p.SetMapCopy("s", copy)!;
            var value = new byte[map.ValueSize];
            Assert.True(map.TryLookup(key.AsSpan(), value));
            BitConverter.TryWriteBytes(value.AsSpan(8 /* SetLayout.ExpiresOffset */), 1UL);
            map.Update(key, value);
        }
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
        Assert.Equal(Limit[0], Assert.Single(State(p, "198.18.0.1")).Statement);
        Assert.Equal(1, Buckets(p));
    }

    [Fact]
    public void ARuleGivingNoStatementsMakesElementsThatRunNoneWhileOldOnesKeepTheirLongerList()
    {
        var counterQuota = ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(100_000, false, 0));
        using var before = Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(counterQuota)]);
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, before.Run(Tcp4("198.18.0.1")));
        var length = State(before, "198.18.0.1")[0].Bytes / 2;
        using var p = Load(Xdp, Verdict.Accept, [Drop(Port23, Matcher.InSet(Fields.Ip.Saddr, "s")), Update(Port22)],
            sets: [Metered(default, counterQuota)]);
        Carry(before, p);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 23)));
        var state = State(p, "198.18.0.1");
        Assert.Equal((4UL, 4 * length, 4 * length), (state[0].Packets, state[0].Bytes, state[1].Bytes));
        // a new element runs none and lists none, in both copies at once (no statements to write it there later)
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.3")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.3", 23)));
        Assert.Empty(State(p, "198.18.0.3"));
        Assert.True(p.SetMapCopy("s", 0)!.TryLookup(V4("198.18.0.3").Bytes.AsSpan(), new byte[p.SetMapCopy("s", 0)!.ValueSize]));
        Assert.True(p.SetMapCopy("s", 1)!.TryLookup(V4("198.18.0.3").Bytes.AsSpan(), new byte[p.SetMapCopy("s", 1)!.ValueSize]));
    }

    /// <summary>`update @s { ip saddr STATEMENTS }` giving its own list to the elements it makes, then <paramref name="verdict"/>.</summary>
    private static Rule UpdateGiving(ValueList<Statement> statements, Verdict verdict, params Matcher[] m) =>
        new(m.ToValueList(), ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(10),
            Stateful: statements)), verdict);

    private static readonly Matcher Port25 = Matcher.Eq(Fields.Tcp.Dport, U16(25)), Port26 = Matcher.Eq(Fields.Tcp.Dport, U16(26));

    /// <summary>
    /// The measurement's two rules in one chain (scripts/measure-dynset-statement-lists.sh): `update @s { ip saddr limit
    /// rate 1/hour burst 2 packets }` then `update @s { ip saddr counter quota 100000 bytes }`, each rule's own list in the
    /// set (<see cref="Backend.Ir.Set.RuleStatementLists"/>), with makers of their own on other ports. An element keeps
    /// its maker's list and every rule and lookup that finds it runs that list: the limit's element made by the first rule
    /// runs its limit in both (its second packet breaks the first rule, then the second), the counter's element counts
    /// once per rule, the counter-and-quota element the second rule's list made counts in the first rule too; a rule
    /// giving none makes an element that runs none.
    /// </summary>
    [Fact]
    public void RulesGivingOneSetDifferentListsMakeElementsWithTheirOwnAndFindingRulesRunTheElementsList()
    {
        var counterQuota = ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(100_000, false, 0));
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = Limit, RuleStatementLists = ValueList.Of(Limit, counterQuota, Counter),
        };
        using var p = Load(Xdp, Verdict.Accept, [
            UpdateGiving(Limit, Verdict.Continue, Port22), UpdateGiving(counterQuota, Verdict.Drop, Port22),
            UpdateGiving(Counter, Verdict.Drop, Port23), UpdateGiving(counterQuota, Verdict.Drop, Port24),
            Drop(Port25, Matcher.InSet(Fields.Ip.Saddr, "s")), UpdateGiving(default, Verdict.Drop, Port26)], sets: [set]);
        // .4 made by the first rule: both rules run its limit (burst 2), so its second packet breaks both and passes
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.4")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.4")));
        Assert.Equal(Limit[0], Assert.Single(State(p, "198.18.0.4")).Statement);
        // .1 made with a counter (port 23): each rule on port 22 runs its counter, the limit and the quota never
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 23)));
        var length = Assert.Single(State(p, "198.18.0.1")).Bytes;
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1")));
        var one = Assert.Single(State(p, "198.18.0.1"));
        Assert.Equal((new CounterStatement(0) as Statement, 7UL, 7 * length), (one.Statement, one.Packets, one.Bytes));
        // .6 made by the second rule's list (port 24): the first rule runs its counter and quota too
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6", 24)));
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6")));
        var six = State(p, "198.18.0.6");
        Assert.Equal((counterQuota[0], 7UL, 7 * length), (six[0].Statement, six[0].Packets, six[0].Bytes));
        Assert.Equal((counterQuota[1], 7 * length), (six[1].Statement, six[1].Bytes));
        // a lookup runs each element's own list: .1 and .6 count, .4's spent limit breaks it
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 25)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6", 25)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.4", 25)));
        Assert.Equal((8UL, 8UL), (State(p, "198.18.0.1")[0].Packets, State(p, "198.18.0.6")[0].Packets));
        // .5 made by a rule giving none runs none: no limit breaks it on port 22, it lists no statements
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5", 26)));
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Empty(State(p, "198.18.0.5"));
        Assert.Equal(1, Buckets(p));
        // both copies hold each element alike
        foreach (var addr in new[] { "198.18.0.1", "198.18.0.4", "198.18.0.5", "198.18.0.6" })
        {
            var v0 = new byte[p.SetMapCopy("s", 0)!.ValueSize];
            var v1 = new byte[v0.Length];
            Assert.True(p.SetMapCopy("s", 0)!.TryLookup(V4(addr).Bytes.AsSpan(), v0));
            Assert.True(p.SetMapCopy("s", 1)!.TryLookup(V4(addr).Bytes.AsSpan(), v1));
            Assert.Equal(v0, v1);
        }
    }

    [Fact]
    public void ARuleGivingAListTheSetWasNotCompiledWithIsRefused()
    {
        var counterQuota = ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(100_000, false, 0));
        // a list among the element lists but not the rules' (a carried one) is no list a rule may give new elements
        Assert.Throws<Backend.Codegen.CodegenException>(() => Load(Xdp, Verdict.Accept, [UpdateGiving(Counter, Verdict.Drop, Port22)],
            sets: [Metered(Limit, Counter, Limit)]));
        Assert.Throws<Backend.Codegen.CodegenException>(() => Load(Xdp, Verdict.Accept, [UpdateGiving(counterQuota, Verdict.Drop, Port22)],
            sets: [Metered(Limit)]));
        // the rules' lists must hold the set's PacketStatements first
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = Counter, RuleStatementLists = ValueList.Of(Limit, Counter),
        };
        Assert.Throws<Backend.Codegen.CodegenException>(() => Load(Xdp, Verdict.Accept, [UpdateGiving(Counter, Verdict.Drop, Port22)], sets: [set]));
    }

    [Fact]
    public void ListsThatAreNotDistinctOrLackTheNewElementsListAreRefused()
    {
        Assert.Throws<Backend.Codegen.CodegenException>(() => Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Limit, Counter)]));
        Assert.Throws<Backend.Codegen.CodegenException>(() => Load(Xdp, Verdict.Accept, [Update(Port22)], sets: [Metered(Limit, Limit, Limit)]));
    }
}
