using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Statements of elements the packet path adds (`add @s { ip saddr counter }`, a set's declared `quota`), as
/// nft_dynset_eval runs them (nft_set_elem_update_expr): a new element's start at zero and run for the packet that
/// added it, a found element's run for every packet that adds or looks it up, and the first that breaks breaks the
/// rule. Their state sits in the element's value in both copies of the set map.
/// </summary>
public class PacketElementStatementTests
{
    private static byte[] Tcp4(string src) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, 22);

    private static Backend.Ir.Set Metered(ValueList<Statement> statements, params SetElement[] elements) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, elements.ToValueList(), Timeouts: true)
        {
            PacketWritten = true, Size = 65535, PacketStatements = statements,
        };

    private static Rule Add(Verdict verdict) =>
        new(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Add, "s", Fields.Ip.Saddr, TimeSpan.FromSeconds(30))), verdict);

    private static IReadOnlyList<PacketElementState> State(LoadedProgram p, string addr) =>
        p.LiveElements("s")!.Single(e => new Value(e.Key).ToString() == V4(addr).ToString()).State;

    private static byte[] Raw(LoadedProgram p, int copy, string addr)
    {
        var value = new byte[p.SetMapCopy("s", copy)!.ValueSize];
        Assert.True(p.SetMapCopy("s", copy)!.TryLookup(V4(addr).Bytes.AsSpan(), value));
        return value;
    }

    [Fact]
    public void ANewElementStartsAtZeroAndCountsThePacketThatAddedItThenEveryPacketThatFindsIt()
    {
        using var p = Load(Xdp, Verdict.Accept, [Add(Verdict.Drop)],
            sets: [Metered(ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(100_000, false, 0)))]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        var first = State(p, "198.18.0.5");
        var length = first[0].Bytes;
        Assert.True(length > 0);
        Assert.Equal((1UL, length), (first[0].Packets, first[0].Bytes));
        Assert.Equal(length, first[1].Bytes);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6")));
        var second = State(p, "198.18.0.5");
        Assert.Equal((2UL, 2 * length), (second[0].Packets, second[0].Bytes));
        Assert.Equal(2 * length, second[1].Bytes);
        Assert.Equal((1UL, length), (State(p, "198.18.0.6")[0].Packets, State(p, "198.18.0.6")[0].Bytes));
        // the other copy holds the same state, so a later generation reads it
        Assert.Equal(Raw(p, 0, "198.18.0.5"), Raw(p, 1, "198.18.0.5"));
    }

    [Fact]
    public void AStatementThatBreaksBreaksTheRuleAndEndsTheStatementsAfterIt()
    {
        // quota 1 byte: the first packet's bytes already exceed it; the counter after it does not count
        using var p = Load(Xdp, Verdict.Accept, [Add(Verdict.Drop)],
            sets: [Metered(ValueList.Of<Statement>(new QuotaStatement(1, false, 0), new CounterStatement(0)))]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        var state = State(p, "198.18.0.5"); // the element is added all the same, as nft_dynset_new inserts it before the statements run
        Assert.True(state[0].Bytes > 1);
        Assert.Equal((0UL, 0UL), (state[1].Packets, state[1].Bytes));

        // `quota over 1 bytes` breaks while within it, a counter before it counts every packet
        using var over = Load(Xdp, Verdict.Accept, [Add(Verdict.Drop)],
            sets: [Metered(ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(1, true, 0)))]);
        Assert.Equal(XdpDrop, over.Run(Tcp4("198.18.0.5")));
        Assert.Equal(1UL, State(over, "198.18.0.5")[0].Packets);
    }

    [Fact]
    public void ALookupRunsAPacketPathElementsStatementsAndNoneOfAControlPlaneElement()
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s")), Add(Verdict.Continue)],
            sets: [Metered(ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(1, false, 0)), SetElement.Exact(V4("198.18.0.7")))]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5"))); // added by the second rule, whose quota breaks
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5"))); // found by the first: its quota breaks the lookup
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.7"))); // the control plane's element has no statements
        Assert.Empty(State(p, "198.18.0.7"));
        // counted by the add, the lookup and the second add (the lookup broke, the rule after it ran)
        Assert.Equal(3UL, State(p, "198.18.0.5")[0].Packets);
    }
}
