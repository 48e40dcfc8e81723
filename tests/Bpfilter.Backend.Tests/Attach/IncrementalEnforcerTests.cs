using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// The enforcer recompiles only attach points whose source changed, applies element changes as map
/// updates in the running programs, and reopens pinned links from another instance.
/// </summary>
[Collection("attach")]
public class IncrementalEnforcerTests
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);
    static readonly NetfilterHook Input = new(NfFamily.Inet, NfHookPoint.Input, 0);

    static BaseChain Chain(string name, Hook hook, params ushort[] dropPorts) => new(name, hook, 0, Verdict.Accept,
        dropPorts.Select(p => Counted(p, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(p)))).ToValueList());

    static Ruleset Rules(params BaseChain[] chains) => new(chains.ToValueList(), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);

    static Dictionary<string, uint> ProgramIds(Enforcer e) => e.Describe().ToDictionary(a => a.Unit.Key, a => a.ProgramId);

    [Fact]
    public void AddingARuleToOneChainKeepsEveryOtherAttachPointsProgram()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(Rules(Chain("t/in", Input, 7001), Chain("t/edge", Xdp, 7002))); return 0; });
        var before = ProgramIds(enforcer);
        Assert.Equal(3, before.Count); // inet input: ipv4 and ipv6; xdp
        Assert.All(before.Values, id => Assert.NotEqual(0u, id));

        var stats = VethPair.InNamespace(veth.Server, () =>
        {
            var o = enforcer.Prepare(Rules(Chain("t/in", Input, 7001), Chain("t/edge", Xdp, 7002, 7003)));
            enforcer.Commit();
            return o.Stats!;
        });
        Assert.Equal((1, 2), (stats.Loaded, stats.Unchanged));
        var after = ProgramIds(enforcer);
        var xdpKey = Xdp.AttachPoint;
        Assert.NotEqual(before[xdpKey], after[xdpKey]);
        Assert.All(before.Where(kv => kv.Key != xdpKey), kv => Assert.Equal(kv.Value, after[kv.Key]));
        Assert.False(veth.SendUdp(7001));
        Assert.False(veth.SendUdp(7003));
        Assert.True(veth.SendUdp(7004));
    }

    /// <summary>Port ranges of one shape: the classification pass makes them one classifier whose tables are maps.</summary>
    static Ruleset RangeRules(int first) => Rules(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, Enumerable.Range(first, 20)
        .Select(p => Counted((ulong)(p - first + 1), Verdict.Drop, Matcher.Range(Fields.Udp.Dport, U16((ulong)p), U16((ulong)p)))).ToValueList()));

    [Fact]
    public void NewConstantsInAClassifiedRunAreMapUpdates()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(RangeRules(7201)); return 0; });
        Assert.False(veth.SendUdp(7205));
        var stats = VethPair.InNamespace(veth.Server, () =>
        {
            var o = enforcer.Prepare(RangeRules(7301));
            enforcer.Commit();
            return o.Stats!;
        });
        // the same instructions with other tables (issue 12): the classifier maps are rewritten, the program stays
        Assert.Equal((0, 1), (stats.Loaded, stats.Kept));
        Assert.True(veth.SendUdp(7205));
        Assert.False(veth.SendUdp(7305));
    }

    [Fact]
    public void RulesAddedToAndDeletedFromAGroupedRunAreMapUpdatesWithCountersOfTheirOwn()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        var ports = Enumerable.Range(7600, 20).Select(p => (ushort)p).ToArray();
        PrepareStats Commit(IEnumerable<ushort> drop) => VethPair.InNamespace(veth.Server, () =>
        {
            var o = enforcer.Prepare(Rules(Chain("t/edge", Xdp, [.. drop])));
            Assert.Null(o.Failure);
            Assert.Empty(enforcer.Commit());
            return o.Stats!;
        });
        Commit(ports);
        var program = Assert.Single(enforcer.Describe());
        Assert.Contains("vmap @t/edge group 0", program.Disassembly);
        Assert.False(veth.SendUdp(7600));
        Assert.Equal(1UL, enforcer.Counter(7600).Packets);

        // 7600 deleted and 7620 added: the run's map changes, the code does not; the new counter takes a slot
        // no rule of this program counted in, so it starts at zero
        var stats = Commit([.. ports.Skip(1), 7620]);
        Assert.Equal((0, 1), (stats.Loaded, stats.Kept));
        Assert.Equal(program.ProgramId, Assert.Single(enforcer.Describe()).ProgramId);
        Assert.Equal(0UL, enforcer.Counter(7620).Packets);
        Assert.True(veth.SendUdp(7600));
        Assert.False(veth.SendUdp(7620));
        Assert.False(veth.SendUdp(7619));
        Assert.Equal((0UL, 1UL, 1UL), (enforcer.Counter(7600).Packets, enforcer.Counter(7620).Packets, enforcer.Counter(7619).Packets));

        // the counter array has room for a quarter more: past it, the program is loaded anew (counters carried)
        var many = Enumerable.Range(7601, 100).Select(p => (ushort)p).ToList();
        Assert.Equal(1, Commit(many).Loaded);
        Assert.NotEqual(program.ProgramId, Assert.Single(enforcer.Describe()).ProgramId);
        Assert.Equal(1UL, enforcer.Counter(7620).Packets);
        Assert.False(veth.SendUdp(7700));
        Assert.True(veth.SendUdp(7701));
    }

    [Fact]
    public void ElementChangesAreMapUpdatesInTheRunningProgram()
    {
        using var veth = new VethPair();
        using var enforcer = new Enforcer();
        var set = new Backend.Ir.Set("t/ports", Fields.Udp.Dport, SetData.NoData, ValueList.Of(SetElement.Exact(U16(7101))));
        var rules = new Ruleset(ValueList.Of(new BaseChain("t/in", Input, 0, Verdict.Accept,
                ValueList.Of(Drop(Matcher.InSet(Fields.Udp.Dport, "t/ports"))))),
            ValueList<Chain>.Empty, ValueList.Of(set));
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(rules); return 0; });
        var before = ProgramIds(enforcer);
        Assert.False(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7102));

        var stats = enforcer.PrepareElements([new SetChange("t/ports", [SetElement.Exact(U16(7102))], [SetElement.Exact(U16(7101))])]);
        Assert.NotNull(stats);
        Assert.Equal((0, 4), (stats.Loaded, stats.MapUpdates)); // one add and one delete in each of the ipv4 and ipv6 programs
        enforcer.Commit();
        Assert.Equal(before, ProgramIds(enforcer));
        // two keys per program: written to the standby copies and switched in at once
        Assert.All(enforcer.LivePrograms, p => Assert.Equal(1, p.Generation));
        Assert.True(veth.SendUdp(7101));
        Assert.False(veth.SendUdp(7102));

        // A range cannot go into a set compiled as a hash map: no map update is staged, the caller recompiles.
        var range = new SetElement(ValueList.Of<KeyPart>(new KeyPart.Range(U16(7200), U16(7210))));
        Assert.Null(enforcer.PrepareElements([new SetChange("t/ports", [range], [])]));

        // After element updates the next full prepare diffs against what the maps hold now.
        var next = rules with { Sets = ValueList.Of(set with { Elements = ValueList.Of(SetElement.Exact(U16(7103))) }) };
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(next); return 0; });
        Assert.Equal(before, ProgramIds(enforcer));
        // a full commit that keeps the programs switches their set maps at once too, and leaves both copies alike
        Assert.All(enforcer.LivePrograms, p =>
        {
            Assert.Equal(0, p.Generation);
            Assert.Equal(p.SetMapCopy("t/ports", 0)!.Keys().Select(Convert.ToHexString).Order(),
                p.SetMapCopy("t/ports", 1)!.Keys().Select(Convert.ToHexString).Order());
        });
        Assert.True(veth.SendUdp(7101));
        Assert.True(veth.SendUdp(7102));
        Assert.False(veth.SendUdp(7103));
    }

    [Fact]
    public void AProgramWithSetsIsPinnedWithItsMapsAndAdoptedWithTheirContents()
    {
        using var veth = new VethPair();
        using var pins = new PinFs();
        var dir = Path.Combine(pins.Path, "enforcer");
        // set maps are named after "FAMILY TABLE/SET": the slash and a dot must not break the pin
        var set = new Backend.Ir.Set("inet t.1/ports", Fields.Udp.Dport, SetData.NoData, ValueList.Of(SetElement.Exact(U16(7401))));
        var rules = new Ruleset(ValueList.Of(new BaseChain("inet t.1/edge", Xdp, 0, Verdict.Accept,
                ValueList.Of(Drop(Matcher.InSet(Fields.Udp.Dport, "inet t.1/ports"))))),
            ValueList<Chain>.Empty, ValueList.Of(set));
        VethPair.InNamespace(veth.Server, () =>
        {
            using var e1 = new Enforcer { PinRoot = dir }; // pins at commit, programs and maps included
            e1.Apply(rules);
            return 0;
        });
        Assert.False(veth.SendUdp(7401)); // the pinned program and its set outlive the enforcer
        Assert.True(veth.SendUdp(7402));
        using var e2 = new Enforcer();
        var programs = VethPair.InNamespace(veth.Server, () =>
        {
            Assert.Equal(1, e2.Adopt(rules, dir, out var p));
            return p;
        });
        Assert.Equal(1, programs); // the program itself, with its set map
    }

    [Fact]
    public void ElementUpdatesLeaveThePinsAsTheyAreAndARestartAdoptsTheProgramWithThem()
    {
        using var veth = new VethPair();
        using var pins = new PinFs();
        var dir = Path.Combine(pins.Path, "enforcer");
        var set = new Backend.Ir.Set("t/ports", Fields.Udp.Dport, SetData.NoData, ValueList.Of(SetElement.Exact(U16(7451))));
        var rules = new Ruleset(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept,
                ValueList.Of(Drop(Matcher.InSet(Fields.Udp.Dport, "t/ports"))))),
            ValueList<Chain>.Empty, ValueList.Of(set));
        var (pinned, program) = VethPair.InNamespace(veth.Server, () =>
        {
            using var e1 = new Enforcer { PinRoot = dir };
            e1.Apply(rules);
            var listing = Snapshot(dir);
            Assert.NotNull(e1.PrepareElements([new SetChange("t/ports", [SetElement.Exact(U16(7452))], [])]));
            Assert.Empty(e1.Commit());
            // an element commit changes no link, program or map object: nothing under the pin root is touched
            Assert.Equal(listing, Snapshot(dir));
            return (listing, Assert.Single(e1.Describe()).ProgramId);
        });
        Assert.NotEmpty(pinned);
        Assert.False(veth.SendUdp(7452)); // the pinned set map holds the element added after the pins were made
        using var e2 = new Enforcer();
        var adopted = VethPair.InNamespace(veth.Server, () =>
        {
            var now = rules with { Sets = ValueList.Of(set with { Elements = ValueList.Of(SetElement.Exact(U16(7451)), SetElement.Exact(U16(7452))) }) };
            Assert.Equal(1, e2.Adopt(now, dir, out var p));
            Assert.Equal(program, Assert.Single(e2.Describe()).ProgramId);
            return p;
        });
        Assert.Equal(1, adopted);
        Assert.False(veth.SendUdp(7451));
        Assert.True(veth.SendUdp(7453));

        // every file and directory under the pin root with its inode: a pin made again is a new inode
        static List<string> Snapshot(string root) => Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Select(f => $"{f} {Inode(f)}").ToList();
    }

    static ulong Inode(string path)
    {
        var r = ProcessRunner.Run("stat", ["-c", "%i", path]);
        return ulong.Parse(r.Stdout.Trim());
    }

    [Fact]
    public void AProgramKeptForANewCompilationIsPinnedUnderItsDigestAndAdoptedAfterARestart()
    {
        using var veth = new VethPair();
        using var pins = new PinFs();
        var dir = Path.Combine(pins.Path, "enforcer");
        // deleting an empty chain of the device compiles to the same code (only its comment goes): the
        // program is kept, and a restart that compiles the smaller ruleset must find it pinned, or it
        // would replace it with a fresh program that counts from zero (found by the soak)
        var before = Rules(Chain("t/edge", Xdp, 7501), Chain("t/empty", Xdp));
        var after = Rules(Chain("t/edge", Xdp, 7501));
        Assert.NotEqual(LoadedProgram.Digest(ProgramCompiler.Compile(before, before.BaseChains, false)),
            LoadedProgram.Digest(ProgramCompiler.Compile(after, after.BaseChains, false)));
        var (first, kept) = VethPair.InNamespace(veth.Server, () =>
        {
            using var e1 = new Enforcer { PinRoot = dir };
            e1.Apply(before);
            var id = Assert.Single(e1.Describe()).ProgramId;
            e1.Apply(after);
            return (id, Assert.Single(e1.Describe()).ProgramId);
        });
        Assert.Equal(first, kept);
        Assert.False(veth.SendUdp(7501));
        using var e2 = new Enforcer();
        var adopted = VethPair.InNamespace(veth.Server, () =>
        {
            Assert.Equal(1, e2.Adopt(after, dir, out var p));
            Assert.Equal(kept, Assert.Single(e2.Describe()).ProgramId);
            return p;
        });
        Assert.Equal(1, adopted);
    }

    [Fact]
    public void APinnedLinkReopenedByANewEnforcerRunsTheNextProgram()
    {
        using var veth = new VethPair();
        using var pins = new PinFs();
        var dir = Path.Combine(pins.Path, "enforcer");
        var first = Rules(Chain("t/in", new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0), 7301), Chain("t/edge", Xdp, 7302));
        var links = VethPair.InNamespace(veth.Server, () =>
        {
            using var e1 = new Enforcer();
            e1.Apply(first);
            e1.Pin(dir);
            return e1.Describe().ToDictionary(a => a.Unit.Key, a => a.LinkId);
        });
        // The first enforcer is gone; its pinned links keep filtering.
        Assert.False(veth.SendUdp(7301));
        Assert.False(veth.SendUdp(7302));
        Assert.True(veth.SendUdp(7303));

        var second = Rules(Chain("t/in", new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0), 7303), Chain("t/edge", Xdp, 7304));
        using var e2 = new Enforcer();
        VethPair.InNamespace(veth.Server, () =>
        {
            Assert.Equal(2, e2.Adopt(second, dir));
            e2.Apply(second);
            return 0;
        });
        Assert.Equal(links, e2.Describe().ToDictionary(a => a.Unit.Key, a => a.LinkId)); // the same links, updated
        Assert.True(veth.SendUdp(7301));
        Assert.True(veth.SendUdp(7302));
        Assert.False(veth.SendUdp(7303));
        Assert.False(veth.SendUdp(7304));
    }

    static void Run(string file, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {err}");
    }

    /// <summary>A bpffs instance of the test's own: unmounting it drops every pin made in it.</summary>
    internal sealed class PinFs : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"bf-pins-{Guid.NewGuid():N}");

        public PinFs()
        {
            Directory.CreateDirectory(Path);
            Run("mount", "-t", "bpf", "bpf", Path);
        }

        public void Dispose()
        {
            Run("umount", Path);
            Directory.Delete(Path);
        }
    }
}
