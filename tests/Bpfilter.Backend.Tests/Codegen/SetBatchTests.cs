using System.Diagnostics;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Set map batches are seen whole: a packet reads one copy of every set map per run, and a batch reaches
/// the copy packets read through one generation switch.
/// </summary>
public class SetBatchTests
{
    static readonly byte[] A = V4("198.18.0.1").Bytes.ToArray(), B = V4("198.18.0.2").Bytes.ToArray();
    static readonly byte[] One = BitConverter.GetBytes(1u);
    const string Map = "set:s";

    /// <summary>
    /// A packet from A to B looks both addresses up in one set: counter 1 counts runs where both are
    /// members, counter 2 runs where neither is. Batches that swap A and B keep exactly one of them a
    /// member, so a run that sees a batch half done is counted.
    /// </summary>
    static LoadedProgram SwapProbe()
    {
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(SetElement.Exact(V4("198.18.0.1"))));
        return Load(Xdp, Verdict.Accept,
        [
            Counted(1, Verdict.Drop, Matcher.InSet(Fields.Ip.Saddr, "s"), Matcher.InSet(Fields.Ip.Daddr, "s")),
            Counted(2, Verdict.Drop, Matcher.InSet(Fields.Ip.Saddr, "s", negated: true), Matcher.InSet(Fields.Ip.Daddr, "s", negated: true)),
        ], sets: [set]);
    }

    static readonly byte[] AtoB = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(1, 2);

    /// <summary>Runs the probe packet on another thread while <paramref name="swap"/> runs; returns the half-done runs seen.</summary>
    static ulong HalfDoneRuns(LoadedProgram p, Action<int> swap, int swaps, TimeSpan budget)
    {
        using var stop = new CancellationTokenSource();
        var runs = 0L;
        var runner = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                p.TestRun(AtoB, 64);
                Interlocked.Add(ref runs, 64);
            }
        });
        runner.Start();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < swaps && clock.Elapsed < budget; i++)
        {
            swap(i);
            if (i > 20 && p.Counter(1).Packets + p.Counter(2).Packets > 0) break; // seen: no need to go on
        }
        stop.Cancel();
        runner.Join();
        Assert.True(Interlocked.Read(ref runs) > 0);
        return p.Counter(1).Packets + p.Counter(2).Packets;
    }

    [Fact]
    public void ASwapBatchIsNeverSeenHalfDone()
    {
        using var p = SwapProbe();
        Assert.Equal(XdpPass, p.Run(AtoB));
        var seen = HalfDoneRuns(p, i =>
        {
            var (add, remove) = i % 2 == 0 ? (B, A) : (A, B);
            var outcome = SetBatch.Apply([new SetBatch.Change(p, Map, [remove], [(add, One)])]);
            Assert.Empty(outcome.Errors);
        }, swaps: 400, budget: TimeSpan.FromSeconds(20));
        Assert.Equal(0ul, seen);
        // 400 swaps (an even number) or fewer: the copies agree with each other and with the record
        Assert.Equal(Keys(p.SetMapCopy("s", 0)!), Keys(p.SetMapCopy("s", 1)!));
        Assert.Equal(Keys(p.SetMapCopy("s", 0)!), p.Entries(Map)!.Keys.Select(Convert.ToHexString).Order().ToList());
    }

    /// <summary>The probe does see per-key updates half done (what element batches did before): the observable works.</summary>
    [Fact]
    public void PerKeyUpdatesOfTheReadCopyAreSeenHalfDone()
    {
        using var p = SwapProbe();
        var seen = HalfDoneRuns(p, i =>
        {
            var (add, remove) = i % 2 == 0 ? (B, A) : (A, B);
            var map = p.SetMap("s")!;
            map.Update(add, One);
            map.Delete(remove);
        }, swaps: 2_000_000, budget: TimeSpan.FromSeconds(20));
        Assert.True(seen > 0, "no run saw a half-done swap in 20 s");
    }

    static List<string> Keys(Backend.Libbpf.BpfMap m) => m.Keys().Select(Convert.ToHexString).Order().ToList();

    [Fact]
    public void OneKeyIsWrittenToBothCopiesWithoutASwitch()
    {
        using var p = SwapProbe();
        Assert.Equal(0, p.Generation);
        p.UpdateMap(Map, [(B, One)], []);
        Assert.Equal(0, p.Generation);
        Assert.Equal(2, Keys(p.SetMapCopy("s", 0)!).Count);
        Assert.Equal(2, Keys(p.SetMapCopy("s", 1)!).Count);
        Assert.Equal(XdpDrop, p.Run(AtoB));
    }

    [Fact]
    public void ABatchSwitchesTheGenerationAndLeavesBothCopiesEqual()
    {
        using var p = SwapProbe();
        p.UpdateMap(Map, [(B, One)], [A]);
        Assert.Equal(1, p.Generation);
        Assert.Equal([Convert.ToHexString(B)], Keys(p.SetMapCopy("s", 0)!));
        Assert.Equal([Convert.ToHexString(B)], Keys(p.SetMapCopy("s", 1)!));
        Assert.Equal(XdpPass, p.Run(AtoB));
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.0.3", "198.18.0.4").Tcp(1, 2))); // neither is a member
    }

    /// <summary>Interval sets (LPM tries) and verdict maps: a batch that moves a range and a verdict is seen at once.</summary>
    [Fact]
    public void IntervalSetsAndVerdictMapsTakeBatches()
    {
        var nets = new Backend.Ir.Set("nets", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(
            new SetElement(ValueList.Of<KeyPart>(new KeyPart.Prefix(V4("10.0.0.0"), 8)))));
        var svc = new Backend.Ir.Set("svc", Fields.Tcp.Dport, SetData.VerdictData, ValueList.Of(
            SetElement.Exact(U16(22), Verdict.Accept), SetElement.Exact(U16(23), Verdict.Drop)));
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "nets")), new Rule(Verdict.VMap(Fields.Tcp.Dport, "svc"))],
            sets: [nets, svc]);
        var from = PacketBuilder.Ether().Ipv4("198.18.0.15", "198.18.0.2").Tcp(1, 2222).Build();
        Assert.Equal(XdpPass, p.Run(from));
        Assert.True(p.AddElement("nets", new SetElement(ValueList.Of<KeyPart>(new KeyPart.Range(V4("198.18.0.10"), V4("198.18.0.20"))))));
        Assert.Equal(1, p.Generation); // a range is several prefixes: one switch
        Assert.Equal(XdpDrop, p.Run(from));
        Assert.Equal(Keys(p.SetMapCopy("nets", 0)!), Keys(p.SetMapCopy("nets", 1)!));
        Assert.True(p.AddElement("svc", SetElement.Exact(U16(2222), Verdict.Drop)));
        Assert.Equal(1, p.Generation); // one key: no switch
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("198.18.1.1", "198.18.0.2").Tcp(1, 2222)));
        Assert.Equal(Keys(p.SetMapCopy("svc", 0)!), Keys(p.SetMapCopy("svc", 1)!));
    }

    /// <summary>
    /// After a restart the standby copies may lag (a batch cut short): an adopted program rewrites a
    /// standby copy from what the set holds before packets are switched to it.
    /// </summary>
    [Fact]
    public void AnAdoptedProgramRewritesItsStandbyCopyBeforeSwitching()
    {
        OnBpfFs(mount =>
        {
            var dir = Path.Combine(mount, "prog");
            using var p = SwapProbe();
            p.Pin(dir);
            using (var standby = Backend.Libbpf.BpfMap.Open(Path.Combine(dir, "map_set:s@1")))
                standby.Update(B, One); // what a cut-short batch could leave
            using var q = LoadedProgram.Adopt(p.Compiled, dir);
            Assert.Equal(0, q.Generation);
            var c = V4("198.18.0.9").Bytes.ToArray();
            q.UpdateMap(Map, [(c, One)], [A]);
            Assert.Equal(1, q.Generation);
            Assert.Equal([Convert.ToHexString(c)], Keys(q.SetMapCopy("s", 1)!));
            Assert.Equal([Convert.ToHexString(c)], Keys(q.SetMapCopy("s", 0)!));
            Assert.Equal(XdpDrop, q.Run(AtoB)); // neither A nor B is a member
        });
    }
}
