using System.Text;
using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// 30 rules of three shapes in turn (no run of one shape to group) are one bit-vector classifier (Classification):
    /// adding or deleting one changes its tables, not the code (issue 12), so the attach point keeps its program (same
    /// id) and the commit is map updates through the tables' double-buffered copies; the new rule drops and counts. A
    /// restart adopts that program, its tables as they are, and the next added rule is map updates too.
    /// </summary>
    [Fact]
    public void ARuleAddedToOrDeletedFromAClassifiedRunKeepsTheProgramAcrossARestart()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        string Rule(int port) => (port % 3) switch
        {
            0 => $"tcp dport {port} counter drop",
            1 => $"ip saddr 198.18.7.0/24 tcp dport {port} counter drop",
            _ => $"tcp sport 1024-65535 tcp dport {port} counter drop",
        };
        var sb = new StringBuilder("table ip c {\n  chain in {\n    type filter hook input priority 0; policy accept;\n");
        for (int port = 2100; port < 2130; port++) sb.Append($"    {Rule(port)}\n");
        rig.Nft(sb.Append("  }\n}\n").ToString());
        var programs = rig.ProgramIds();
        Assert.Single(programs);
        var explained = rig.Explain();
        Assert.True(explained.Contains("clsword") || explained.Contains("cls:rules"), explained); // the classifier's scan or its rule map

        AddKeepsTheProgram(2130);
        Assert.Equal([2105, 2130], DroppedOf(rig, 2105, 2130, 2199));
        var counters = Counters(ListWithHandles(rig));
        Assert.True(counters[2130] >= 1, ListWithHandles(rig));
        Assert.Equal(0UL, counters[2129]);

        var handle = Regex.Match(ListWithHandles(rig), @"tcp dport 2105 counter packets \d+ bytes \d+ drop # handle (\d+)");
        Assert.True(handle.Success, ListWithHandles(rig));
        var mark = rig.Daemon.Log.Length;
        rig.Nft($"delete rule ip c in handle {handle.Groups[1].Value}");
        Assert.Contains("0 program(s) loaded, 1 kept with", rig.Daemon.Log[mark..]);
        Assert.Equal(programs, rig.ProgramIds());
        Assert.Equal([2130], DroppedOf(rig, 2105, 2130));

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        Assert.Equal(programs, rig.ProgramIds());
        Assert.Contains("with their running program", rig.Daemon.Log);
        var after = Counters(ListWithHandles(rig));
        Assert.True(after[2130] > counters[2130], ListWithHandles(rig)); // counted before the restart, and dropped once more since
        Assert.DoesNotContain(2105, after.Keys);

        AddKeepsTheProgram(2131);
        Assert.Equal([2130, 2131], DroppedOf(rig, 2105, 2130, 2131));
        Assert.True(Counters(ListWithHandles(rig))[2131] >= 1);

        void AddKeepsTheProgram(int port)
        {
            var at = rig.Daemon.Log.Length;
            rig.Nft($"add rule ip c in {Rule(port)}");
            Assert.Contains("0 program(s) loaded, 1 kept with", rig.Daemon.Log[at..]);
            Assert.Equal(programs, rig.ProgramIds());
        }
    }
}
