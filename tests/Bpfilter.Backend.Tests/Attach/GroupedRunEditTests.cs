using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Testing;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// A rule added to or deleted from a grouped run is staged as map updates worked out from the change
/// (GroupedRunEdit), without lowering or compiling: the program keeps its id, and what it runs is exactly
/// what a full compile of the new ruleset (with the running counter layout) gives: the same instructions,
/// counter slots and map contents, the same verdicts and counters through BPF_PROG_TEST_RUN. Changes that
/// are not such an edit compile as before.
/// </summary>
[Collection("attach")]
public class GroupedRunEditTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);

    /// <summary>`udp dport P counter drop` (counter id P) for each port, then `udp dport P counter accept` for each accepted one.</summary>
    static Ruleset Rules(IEnumerable<int> drop, IEnumerable<int>? accept = null, Rule? at = null, int atIndex = 0)
    {
        var rules = drop.Select(p => Counted((ulong)p, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16((ulong)p))))
            .Concat((accept ?? []).Select(p => Counted((ulong)p, Verdict.Accept, Matcher.Eq(Fields.Udp.Dport, U16((ulong)p))))).ToList();
        if (at != null) rules.Insert(atIndex, at);
        return new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, rules.ToValueList())), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
    }

    static byte[] Udp(int port) => PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Udp(1234, (ushort)port).Build();

    const uint XdpDrop = 1, XdpPass = 2;

    sealed class Rig() : EditRig(Rules([]))
    {
        public uint Run(int port) => Run(Udp(port));

        /// <summary>What a full compile of the current ruleset with the running counter layout gives is what runs.</summary>
        public void AssertSameAsFullCompile()
        {
            var running = Program;
            var full = ProgramCompiler.Compile(Current, Current.BaseChains, counters: CounterLayout.Of(running.Compiled));
            Assert.Equal(full.Disassembly, running.Compiled.Disassembly);
            Assert.Equal(full.CounterSlots.OrderBy(kv => kv.Key), running.Compiled.CounterSlots.OrderBy(kv => kv.Key));
            Assert.Equal(full.CounterSlotsUsed, running.Compiled.CounterSlotsUsed);
            foreach (var spec in full.Maps.Where(m => m.Name.StartsWith("set:", StringComparison.Ordinal)))
            {
                var live = running.Entries(spec.Name);
                Assert.NotNull(live);
                Assert.Equal(spec.Entries.Select(Hex).Order(), live.Select(kv => Hex((kv.Key, kv.Value))).Order());
            }
        }

    }

    static readonly int[] Run20 = Enumerable.Range(7600, 20).ToArray();

    [Fact]
    public void ARuleAppendedToOrInsertedIntoAGroupedRunIsAMapUpdateAsAFullCompileGives()
    {
        using var rig = new Rig();
        Assert.Equal(1, rig.Commit(Rules(Run20)).Loaded);
        var id = rig.ProgramId;
        Assert.Contains("vmap @t/edge group 0", rig.Program.Compiled.Disassembly);
        Assert.Equal(XdpDrop, rig.Run(7605));
        Assert.Equal(XdpDrop, rig.Run(7605));

        // appended at the end of the run
        var stats = rig.Commit(Rules([.. Run20, 7620]));
        Assert.Equal((0, 1, 1, 1), (stats.Loaded, stats.Kept, stats.Edited, stats.MapUpdates));
        Assert.Equal(id, rig.ProgramId);
        rig.AssertSameAsFullCompile();
        Assert.Equal(XdpDrop, rig.Run(7620));
        Assert.Equal(XdpPass, rig.Run(7621));
        Assert.Equal((1UL, 2UL), (rig.Enforcer.Counter(7620).Packets, rig.Enforcer.Counter(7605).Packets)); // existing counters stay

        // inserted in the middle (nft insert / add ... position)
        var middle = Counted(7700, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(7700)));
        stats = rig.Commit(Rules([.. Run20, 7620], at: middle, atIndex: 7));
        Assert.Equal((0, 1), (stats.Loaded, stats.Edited));
        Assert.Equal(id, rig.ProgramId);
        rig.AssertSameAsFullCompile();
        Assert.Equal(XdpDrop, rig.Run(7700));
        Assert.Equal(1UL, rig.Enforcer.Counter(7700).Packets);
        Assert.Equal(1UL, rig.Enforcer.Counter(7620).Packets);
    }

    [Fact]
    public void ARuleDeletedFromAGroupedRunIsAMapUpdateAsAFullCompileGives()
    {
        using var rig = new Rig();
        rig.Commit(Rules(Run20));
        var id = rig.ProgramId;
        Assert.Equal(XdpDrop, rig.Run(7600));
        Assert.Equal(XdpDrop, rig.Run(7610));

        foreach (var gone in new[] { 7610, 7600, 7619 }) // middle, first, last
        {
            var stats = rig.Commit(Rules(rig.Current.BaseChains[0].Rules.Select(r => (int)r.CounterId!.Value).Where(p => p != gone)));
            Assert.Equal((0, 1, 1, 1), (stats.Loaded, stats.Kept, stats.Edited, stats.MapUpdates));
            Assert.Equal(id, rig.ProgramId);
            rig.AssertSameAsFullCompile();
            Assert.Equal(XdpPass, rig.Run(gone));
        }
        Assert.Equal(XdpDrop, rig.Run(7611));
        Assert.Equal(1UL, rig.Enforcer.Counter(7611).Packets);
    }

    [Fact]
    public void ChangesThatAreNotSuchAnEditCompileAsBefore()
    {
        using var rig = new Rig();
        rig.Commit(Rules(Run20));
        var id = rig.ProgramId;

        // a key value already in the run: the later rule is shadowed (its counter idle), found by compiling
        var twin = Counted(9001, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(7603)));
        var stats = rig.Commit(Rules(Run20, at: twin, atIndex: 20));
        Assert.Equal(0, stats.Edited);
        rig.AssertSameAsFullCompile();
        Assert.Equal(XdpDrop, rig.Run(7603));
        Assert.Equal((1UL, 0UL), (rig.Enforcer.Counter(7603).Packets, rig.Enforcer.Counter(9001).Packets));

        // a rule of another shape in the middle splits the run in two runs too short to group: the code changes
        var other = Counted(9002, Verdict.Drop, Matcher.Eq(Fields.Tcp.Dport, U16(80)));
        stats = rig.Commit(Rules(Run20, at: other, atIndex: 10));
        Assert.Equal((1, 0), (stats.Loaded, stats.Edited));
        Assert.NotEqual(id, rig.ProgramId);
        Assert.DoesNotContain("group 0", rig.Program.Compiled.Disassembly);
        Assert.Equal(XdpDrop, rig.Run(7615));
        Assert.Equal(XdpPass, rig.Run(7620));

        // a verdict the run's map was not compiled with (accept among drops): the code changes
        rig.Commit(Rules(Run20));
        id = rig.ProgramId;
        stats = rig.Commit(Rules(Run20, accept: [7620]));
        Assert.Equal((1, 0), (stats.Loaded, stats.Edited));
        Assert.NotEqual(id, rig.ProgramId);
        Assert.Equal(XdpPass, rig.Run(7620));
        Assert.Equal(1UL, rig.Enforcer.Counter(7620).Packets);
    }

    [Fact]
    public void AnAbortedEditLeavesTheRunningProgramAndItsMapsAsTheyWere()
    {
        using var rig = new Rig();
        rig.Commit(Rules(Run20));
        var id = rig.ProgramId;
        var stats = rig.Stage(Rules([.. Run20, 7620]));
        Assert.Equal(1, stats.Edited);
        rig.Enforcer.Abort();
        Assert.Equal(id, rig.ProgramId);
        Assert.Equal(XdpPass, rig.Run(7620));
        Assert.DoesNotContain(7620UL, rig.Program.Compiled.CounterSlots.Keys);
        rig.AssertSameAsFullCompile();

        // the same edit staged again commits as if the aborted one never was
        Assert.Equal(1, rig.Commit(Rules([.. Run20, 7621])).Edited);
        Assert.Equal(id, rig.ProgramId);
        rig.AssertSameAsFullCompile();
        Assert.Equal(XdpDrop, rig.Run(7621));
        Assert.Equal(XdpPass, rig.Run(7620));
    }
}
