using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// Two programs writing one set from the packet path (as an inet chain's ipv4 and ipv6 programs do; here XDP and tc
/// ingress of one device, each adding its own keys with counters) share its copies, and a rule change that gives new
/// elements another statement list loads both anew onto new shared copies: the packet-path elements are carried from
/// the old copies to the new ones once, and a packet either program counts while the commit swaps the other one in is
/// kept (the kernel's element counts every packet).
/// </summary>
[Collection("attach")]
public class SharedCopiesCarryTests
{
    static readonly ValueList<Statement> Counter = ValueList.Of<Statement>(new CounterStatement(0));
    static readonly ValueList<Statement> Limit = ValueList.Of<Statement>(new LimitStatement(1, TimeSpan.FromHours(1), 100));

    /// <summary>
    /// `update @s { KEY STATEMENTS }` then drop: XDP for UDP to 7101 with the source (the client), tc for 7102 with the
    /// destination (the server); the XDP rule's own timeout is <paramref name="xdpTimeoutMinutes"/>.
    /// </summary>
    static Ruleset Rules(ValueList<Statement> statements, int xdpTimeoutMinutes = 10)
    {
        Rule Update(int port, MatchKey key, int minutes) =>
            new(ValueList.Of(Matcher.Eq(Fields.Udp.Dport, U16((ushort)port))),
                ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", key, TimeSpan.FromMinutes(minutes))), Verdict.Drop);
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = statements,
        };
        return ServerHooks.XdpAndTc(ValueList.Of(Update(7101, Fields.Ip.Saddr, xdpTimeoutMinutes)), ValueList.Of(Update(7102, Fields.Ip.Daddr, 10)), set);
    }

    static ulong Packets(Enforcer e, string address) => Assert.Single(e.LivePrograms.Select(p =>
        p.LiveElements("s")!.Single(x => new Value(x.Key).ToString() == V4(address).ToString()).State.Single().Packets).Distinct());

    static uint CopyId(Loader.LoadedProgram p) => SharedPacketPathSetTests.CopyId(p, 0);

    /// <summary>One packet to each port (both dropped): the XDP rule's (7101) and the tc rule's (7102).</summary>
    static void SendEach(VethPair veth)
    {
        Assert.False(veth.SendUdp(7101));
        Assert.False(veth.SendUdp(7102));
    }

    /// <summary>The elements of the client's (XDP) and the server's (tc) address counted <paramref name="packets"/> each.</summary>
    static void Counted(VethPair veth, Enforcer e, ulong packets) =>
        Assert.Equal((packets, packets), (Packets(e, veth.ClientAddress), Packets(e, veth.ServerAddress)));

    /// <summary>
    /// Both programs committed with element counters and two packets to each port counted on the elements they add;
    /// returns the id of the copy of @s they share.
    /// </summary>
    static uint CommitCountingTwice(VethPair veth, Enforcer enforcer)
    {
        Assert.True(veth.SendUdp(7103)); // the client's neighbour entry, before anything is judged
        PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter));
        var copy = Assert.Single(enforcer.LivePrograms.Select(CopyId).Distinct());
        SendEach(veth);
        SendEach(veth);
        Counted(veth, enforcer, 2);
        return copy;
    }

    [Fact]
    public void APacketCountedBetweenTheTwoSwapsIsKept()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        var before = CommitCountingTwice(veth, enforcer);

        // the XDP program is swapped in first: a packet to each port then, one counted by the new XDP program on the new
        // copies, one by the old tc program on the old ones
        var swaps = 0;
        enforcer.Installed = _ =>
        {
            if (swaps++ > 0) return;
            SendEach(veth);
        };
        Assert.Equal(2, PacketPathCarryTests.Commit(veth, enforcer, Rules(Limit)).Loaded);
        enforcer.Installed = null;
        Assert.Equal(2, swaps);
        var after = Assert.Single(enforcer.LivePrograms.Select(CopyId).Distinct());
        Assert.NotEqual(before, after);
        Counted(veth, enforcer, 3);

        SendEach(veth);
        Counted(veth, enforcer, 4);
    }

    /// <summary>
    /// Only one of the two programs is loaded anew (the XDP rule's own timeout changes; the set's maps do not, and the tc
    /// program is kept as it runs): the new XDP program takes the copies the running programs hold (SharedCopies) and
    /// nothing is carried (PacketPathCarry.Before finds the set shared with the program it replaces), so the copies the
    /// kept tc program reads are never rewritten from an older read: a packet either program counts while the XDP program
    /// is swapped in is counted once, and both keep counting on the same elements afterwards.
    /// </summary>
    [Fact]
    public void OneProgramLoadedAnewWhileTheOtherIsKeptWritesNoCopyTheKeptOneReads()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        var before = CommitCountingTwice(veth, enforcer);
        var tc = enforcer.LivePrograms.Single(p => p.Compiled.ProgramType == Backend.Libbpf.BpfProgType.SchedCls);

        // while the new XDP program is swapped in: one packet to each port, the tc one counted by the kept program
        var swaps = 0;
        enforcer.Installed = _ =>
        {
            swaps++;
            SendEach(veth);
        };
        var stats = PacketPathCarryTests.Commit(veth, enforcer, Rules(Counter, xdpTimeoutMinutes: 20));
        enforcer.Installed = null;
        Assert.Equal((1, 1), (stats.Loaded, swaps));
        Assert.Contains(tc, enforcer.LivePrograms);
        Assert.Equal(before, Assert.Single(enforcer.LivePrograms.Select(CopyId).Distinct()));
        Counted(veth, enforcer, 3);

        SendEach(veth);
        Counted(veth, enforcer, 4);
    }
}
