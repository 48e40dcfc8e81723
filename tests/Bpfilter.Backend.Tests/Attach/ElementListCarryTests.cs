using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// A rule writing @s replaced by one that gives new elements another statement list (scripts/measure-dynset-statement-lists.sh,
/// its first part): the kernel keeps the elements, each with the list it was made with (nft_dynset_new) and its state, and
/// gives new ones the new list. The program loaded anew holds both lists (ElementLists) and the carry rewrites each
/// element's tag; a set whose elements have limits keeps its lists as they are, or starts empty when the list changes.
/// </summary>
[Collection("attach")]
public class ElementListCarryTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);
    static readonly ValueList<Statement> Counter = ValueList.Of<Statement>(new CounterStatement(0));
    static readonly ValueList<Statement> Limit = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 2));

    /// <summary>UDP to 7101: `update @s { ip saddr STATEMENTS }` then drop (a packet the update breaks is accepted by the policy); 7103 with <paramref name="more"/>.</summary>
    static Ruleset Rules(ValueList<Statement> statements, bool more = false)
    {
        var rules = new List<Rule>
        {
            new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(7101))),
                ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(10))), Verdict.Drop),
        };
        if (more) rules.Add(new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(7103)), Matcher.InSet(Fields.Ip.Saddr, "s")), ValueList<Statement>.Empty, Verdict.Drop));
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = statements,
        };
        return new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.ToValueList())), ValueList<Chain>.Empty, ValueList.Of(set));
    }

    static IReadOnlyList<Loader.PacketElementState> State(Enforcer e) => Assert.Single(e.LivePrograms.Single().LiveElements("s")!).State;

    /// <summary>`delete element`: a transaction of element changes alone, map updates in the running programs.</summary>
    static void Delete(VethPair veth, Enforcer e, SetElement element) => VethPair.InNamespace(veth.Server, () =>
    {
        Assert.NotNull(e.PrepareElements([new SetChange("s", [], [element])]));
        Assert.Empty(e.Commit());
        return 0;
    });

    [Fact]
    public void AnElementKeepsItsCounterThroughTheReplacementAndANewOneGetsTheNewLimit()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter));
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.Equal(2UL, Assert.Single(State(enforcer)).Packets);

        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit)).Loaded);
        var carried = Assert.Single(State(enforcer));
        Assert.Equal((Statement)Counter[0], carried.Statement);
        Assert.Equal(2UL, carried.Packets);
        // its counter goes on counting; the new rule's limit (burst 2) never runs on it
        for (var i = 0; i < 3; i++) Assert.False(veth.SendUdp(7101));
        Assert.Equal(5UL, Assert.Single(State(enforcer)).Packets);

        // deleted by the control plane and made again: the new rule's list, its third packet breaks the rule
        var client = SetElement.Exact(V4(veth.ClientAddress));
        Delete(veth, enforcer, client);
        for (var i = 0; i < 2; i++) Assert.False(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7101));
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);

        // a program loaded anew for other rules keeps the set as it is (its bucket too: still spent)
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit, more: true)).Loaded);
        Assert.Equal(Limit[0], Assert.Single(State(enforcer)).Statement);
        Assert.True(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7103)); // a lookup runs the element's limit too: spent, it breaks the rule

        // a set whose elements have limits starts empty when the list changes, as before (their buckets are not carried)
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter)).Loaded);
        Assert.Empty(enforcer.LivePrograms.Single().LiveElements("s")!);
    }

    [Fact]
    public void ARecompileDropsAListNoLiveElementCarries()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter));
        Assert.False(veth.SendUdp(7101));
        // replaced by a rule giving none: the element keeps its counter, new ones would run none
        PacketPathCarryTests.Commit(veth, enforcer, Rules(default));
        Assert.False(veth.SendUdp(7101));
        Assert.Equal(2UL, Assert.Single(State(enforcer)).Packets);
        var lists = enforcer.LivePrograms.Single().Compiled.SetLayouts["s"].Set.ElementLists;
        Assert.Equal(Counter, Assert.Single(lists));
        // the element deleted, the next recompile holds no list: compiled as a set without statements
        var client = SetElement.Exact(V4(veth.ClientAddress));
        Delete(veth, enforcer, client);
        Assert.Equal(1, PacketPathCarryTests.Commit(veth, enforcer, Rules(default, more: true)).Loaded);
        Assert.Empty(enforcer.LivePrograms.Single().Compiled.SetLayouts["s"].Set.ElementLists);
        Assert.False(veth.SendUdp(7101));
        Assert.Empty(State(enforcer));
    }
}
