using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// A set the program writes from the packet path keeps what packets added through commits: a program loaded anew
/// starts with the replaced program's live elements (except keys the transaction removed), and a kept program
/// applies only the transaction's own element changes to the map, not its compiled contents.
/// </summary>
[Collection("attach")]
public class PacketPathCarryTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);

    internal static Backend.Ir.Set Seen(params SetElement[] elements) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, elements.ToValueList(), Timeouts: true) { PacketWritten = true, Size = 16 };

    /// <summary>UDP to 7101 adds the source to @s; a source in @s is dropped at 7102 (and 7103 when <paramref name="more"/>).</summary>
    static Ruleset Rules(bool more = false, params SetElement[] elements) => Rules(Seen(elements), more);

    static Ruleset Rules(Backend.Ir.Set seen, bool more = false)
    {
        var rules = new List<Rule>
        {
            new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16(7101))),
                ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Add, "s", Fields.Ip.Saddr, TimeSpan.FromMinutes(1))), Verdict.Continue),
            new(ValueList.Of(Matcher.InSet(Fields.Ip.Saddr, "s"), Matcher.Eq(Fields.Udp.Dport, U16(7102))), ValueList<Statement>.Empty, Verdict.Drop),
        };
        if (more) rules.Add(new(ValueList.Of(Matcher.InSet(Fields.Ip.Saddr, "s"), Matcher.Eq(Fields.Udp.Dport, U16(7103))), ValueList<Statement>.Empty, Verdict.Drop));
        return new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.ToValueList())), ValueList<Chain>.Empty, ValueList.Of(seen));
    }

    internal static PrepareStats Commit(VethPair veth, Enforcer e, Ruleset r, params SetChange[] changes) => VethPair.InNamespace(veth.Server, () =>
    {
        var o = e.Prepare(r, changes.ToDictionary(c => c.Set));
        Assert.Null(o.Failure);
        Assert.Empty(e.Commit());
        return o.Stats!;
    });

    [Fact]
    public void AReloadedProgramStartsWithThePacketPathsElements()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        Commit(veth, enforcer, Rules());
        Assert.True(veth.SendUdp(7101)); // the client is added to @s
        Assert.False(veth.SendUdp(7102));
        var oldExpiry = enforcer.LivePrograms.Single().LiveElements("s")!.Single().Expires;

        Assert.Equal(1, Commit(veth, enforcer, Rules(more: true)).Loaded); // new code: a new program
        var live = Assert.Single(enforcer.LivePrograms.Single().LiveElements("s")!);
        Assert.Equal(oldExpiry, live.Expires); // carried with its value, not added anew
        Assert.False(veth.SendUdp(7102));
        Assert.False(veth.SendUdp(7103));

        // a reload whose transaction removes the element does not carry it
        var client = SetElement.Exact(V4(veth.ClientAddress));
        Assert.Equal(1, Commit(veth, enforcer, Rules(), new SetChange("s", [], [client])).Loaded);
        Assert.Empty(enforcer.LivePrograms.Single().LiveElements("s")!);
        Assert.True(veth.SendUdp(7102));
    }

    [Fact]
    public void AKeptProgramAppliesOnlyTheTransactionsOwnChanges()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        Commit(veth, enforcer, Rules());
        Assert.True(veth.SendUdp(7101));
        // the same code with a control-plane element added: kept, and the compiled contents (which lack the
        // client) do not delete what the packet path added
        var other = SetElement.Exact(V4("198.18.99.1"));
        var stats = Commit(veth, enforcer, Rules(false, other), new SetChange("s", [other], []));
        Assert.Equal((0, 1), (stats.Loaded, stats.Kept));
        Assert.Equal(2, enforcer.LivePrograms.Single().LiveElements("s")!.Count);
        Assert.False(veth.SendUdp(7102));
    }

    /// <summary>
    /// The same code with the set's size changed: the map is sized to it (the packet path's add fails at a full map,
    /// where nft_dynset breaks the rule), so the program is loaded anew with its elements carried, not kept with the
    /// old map's capacity; a size below what the map holds is refused, naming the set (the kernel keeps them and adds past).
    /// </summary>
    [Fact]
    public void ASetsSizeChangeReloadsTheProgramWithTheMapAtTheNewSize()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        Commit(veth, enforcer, Rules());
        Assert.True(veth.SendUdp(7101));
        var other = SetElement.Exact(V4("198.18.99.1"));
        Commit(veth, enforcer, Rules(false, other), new SetChange("s", [other], []));

        var stats = Commit(veth, enforcer, Rules(Seen(other) with { Size = 2 }));
        Assert.Equal((1, 0), (stats.Loaded, stats.Kept));
        var program = enforcer.LivePrograms.Single();
        Assert.Equal(2, program.SetMap("s")!.MaxEntries);
        Assert.Equal(2, program.LiveElements("s")!.Count);
        Assert.False(veth.SendUdp(7102));

        var refused = VethPair.InNamespace(veth.Server, () => enforcer.Prepare(Rules(Seen(other) with { Size = 1 }))).Failure;
        enforcer.Abort();
        Assert.NotNull(refused);
        Assert.Equal(95, refused.Errno);
        Assert.Contains("set 's': size 1 is below the 2 elements it holds", refused.Reason);
    }
}
