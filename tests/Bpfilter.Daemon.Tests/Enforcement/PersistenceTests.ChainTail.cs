using System.Text;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// 30 classified rules (three shapes in turn: one classifier that ends the chain), then two rules added: they run in the
    /// chain tail's program (its prog-array slot filled, the program's id kept). A clean stop and a SIGKILL, each followed by a
    /// restart, adopt that program with its tail: same program id, the same tail program in its slot, the head's and the
    /// tail's rules drop and count on, counts kept. A rule added after the restart goes into the adopted program's tail.
    /// </summary>
    [Fact]
    public void AProgramWithAFilledChainTailIsAdoptedAfterACleanStopAndASigkill()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        static string Rule(int port) => (port % 3) switch
        {
            0 => $"tcp dport {port} counter drop",
            1 => $"ip saddr 198.18.7.0/24 tcp dport {port} counter drop",
            _ => $"tcp sport 1024-65535 tcp dport {port} counter drop",
        };
        var sb = new StringBuilder("table ip tl {\n  chain in {\n    type filter hook input priority 0; policy accept;\n");
        for (int port = 2300; port < 2330; port++) sb.Append($"    {Rule(port)}\n");
        rig.Nft(sb.Append("  }\n}\n").ToString());
        var programs = rig.ProgramIds();
        Assert.Single(programs);
        Assert.Equal(0u, TailSlotProgram(pins.Path)); // a compile leaves the slot empty
        rig.Nft($"add rule ip tl in {Rule(2330)}");
        rig.Nft($"add rule ip tl in {Rule(2331)}");
        Assert.Equal(programs, rig.ProgramIds());
        var tail = TailSlotProgram(pins.Path);
        Assert.NotEqual(0u, tail);
        // 2303 is a head (classifier) rule, 2330 and 2331 the tail's, 2399 none
        int[] probed = [2303, 2330, 2331, 2399], dropped = [2303, 2330, 2331];
        Assert.Equal(dropped, DroppedOf(rig, probed));
        var counters = Counters(ListWithHandles(rig));
        foreach (var port in dropped) Assert.True(counters[port] >= 1, ListWithHandles(rig));

        for (int round = 0; round < 2; round++)
        {
            if (round == 0) Assert.Equal(0, rig.Daemon.Terminate());
            else rig.Daemon.Kill();
            rig.Daemon.Restart();
            Assert.True(programs.SequenceEqual(rig.ProgramIds()), $"round {round}: the program was loaded anew\n{rig.Daemon.Log}");
            Assert.Equal(tail, TailSlotProgram(pins.Path));
            var kept = Counters(ListWithHandles(rig));
            foreach (var port in dropped) Assert.True(kept[port] >= counters[port], $"round {round}: port {port} counted {kept[port]}, {counters[port]} before\n{ListWithHandles(rig)}");
            Assert.Equal(dropped, DroppedOf(rig, probed));
            var after = Counters(ListWithHandles(rig));
            foreach (var port in dropped) Assert.True(after[port] > kept[port], ListWithHandles(rig));
            counters = after;
        }

        rig.Nft($"add rule ip tl in {Rule(2333)}");
        Assert.Equal(programs, rig.ProgramIds());
        Assert.NotEqual(0u, TailSlotProgram(pins.Path));
        Assert.Equal([2303, 2330, 2331, 2333], DroppedOf(rig, [.. probed, 2333]));
    }

    /// <summary>The id of the program in the chain tail's slot of the one pinned prog array under <paramref name="pins"/> (0: empty).</summary>
    static uint TailSlotProgram(string pins)
    {
        using var array = BpfMap.Open(Directory.GetFiles(pins, "map_" + CompiledProgram.SegmentsMap, SearchOption.AllDirectories).Single());
        var id = new byte[4];
        return array.TryLookup(BitConverter.GetBytes((uint)ProgramCompiler.TailSlot), id) ? BitConverter.ToUInt32(id) : 0;
    }
}
