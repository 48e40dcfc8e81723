using System.Text;
using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// A run of 20 `tcp dport N counter drop` rules is one verdict-map lookup (RuleGrouping): adding or deleting a
    /// rule of the run changes the map's elements, not the code, so the attach point keeps its program (same id)
    /// and the commit is map updates; the new rule drops and counts in a slot of its own. A restart adopts that
    /// program again (its counter layout is saved with the state) and the next added rule is a map update too.
    /// Each of these commits works the map updates out from the change (GroupedRunEdit): nothing is compiled.
    /// </summary>
    [Fact]
    public void ARuleAddedToOrDeletedFromAGroupedRunKeepsTheProgramAcrossARestart() =>
        RunEditsKeepTheProgramAcrossARestart("g", 2000, 20, port => $"tcp dport {port} counter drop",
            explained => Assert.Contains("vmap @ip g/in group 0", explained), // the program's comment on the grouped run
            edited: "(1 edited in place: a grouped or classified run's rule, or a chain tail)");

    /// <summary>
    /// Table ip TABLE, chain in (input, policy accept) with a rule for each of <paramref name="count"/> ports from
    /// <paramref name="first"/> (<paramref name="rule"/> of the port, dropping the peer's SYN to it): a rule added,
    /// one deleted, the daemon killed and restarted, another added: the attach point keeps its program throughout
    /// (each commit map updates, its log line saying <paramref name="edited"/> when given), the rules drop and count.
    /// </summary>
    static void RunEditsKeepTheProgramAcrossARestart(string table, int first, int count, Func<int, string> rule, Action<string> explained, string? edited = null)
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        var sb = new StringBuilder($"table ip {table} {{\n  chain in {{\n    type filter hook input priority 0; policy accept;\n");
        for (int port = first; port < first + count; port++) sb.Append($"    {rule(port)}\n");
        rig.Nft(sb.Append("  }\n}\n").ToString());
        var programs = rig.ProgramIds();
        Assert.Single(programs);
        explained(rig.Explain());
        var (added, deleted, next) = (first + count, first + 5, first + count + 1);

        AddKeepsTheProgram(added);
        Assert.Equal([deleted, added], DroppedOf(rig, deleted, added, first + 99));
        var counters = Counters(ListWithHandles(rig));
        Assert.True(counters[added] >= 1, ListWithHandles(rig));
        Assert.Equal(0UL, counters[added - 1]);

        var handle = Regex.Match(ListWithHandles(rig), $@"tcp dport {deleted} counter packets \d+ bytes \d+ drop # handle (\d+)");
        Assert.True(handle.Success, ListWithHandles(rig));
        var mark = rig.Daemon.Log.Length;
        rig.Nft($"delete rule ip {table} in handle {handle.Groups[1].Value}");
        Assert.Contains("0 program(s) loaded, 1 kept with", rig.Daemon.Log[mark..]);
        if (edited != null) Assert.Contains(edited, rig.Daemon.Log[mark..]);
        Assert.Equal(programs, rig.ProgramIds());
        Assert.Equal([added], DroppedOf(rig, deleted, added));

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        Assert.Equal(programs, rig.ProgramIds());
        Assert.Contains("with their running program", rig.Daemon.Log);
        var after = Counters(ListWithHandles(rig));
        Assert.True(after[added] > counters[added], ListWithHandles(rig)); // counted before the restart, and dropped once more since
        Assert.DoesNotContain(deleted, after.Keys);

        AddKeepsTheProgram(next);
        Assert.Equal([added, next], DroppedOf(rig, deleted, added, next));
        Assert.True(Counters(ListWithHandles(rig))[next] >= 1);

        void AddKeepsTheProgram(int port)
        {
            var at = rig.Daemon.Log.Length;
            rig.Nft($"add rule ip {table} in {rule(port)}");
            Assert.Contains("0 program(s) loaded, 1 kept with", rig.Daemon.Log[at..]);
            if (edited != null) Assert.Contains(edited, rig.Daemon.Log[at..]);
            Assert.Equal(programs, rig.ProgramIds());
        }
    }

    /// <summary>
    /// The bench's shape (`ip saddr A tcp dport P counter drop`) in an inet input chain: its ipv4 and ipv6 programs
    /// both keep their ids when a rule of that shape is added or deleted, and the added rule drops and counts.
    /// </summary>
    [Fact]
    public void AnInetChainsGroupedRunTakesAnAddedAndADeletedRuleInPlace()
    {
        using var rig = new EnforcementRig();
        var sb = new StringBuilder("table inet g {\n  chain in {\n    type filter hook input priority 0; policy accept;\n");
        for (int k = 0; k < 20; k++) sb.Append($"    ip saddr 198.18.9.{k + 1} tcp dport {3000 + k} counter drop\n");
        rig.Nft(sb.Append("  }\n}\n").ToString());
        var programs = rig.ProgramIds();
        Assert.Equal(2, programs.Count);

        var mark = rig.Daemon.Log.Length;
        rig.Nft($"add rule inet g in ip saddr {EnforcementRig.PeerAddr} tcp dport 3020 counter drop");
        Assert.Contains("0 program(s) loaded, 2 kept with", rig.Daemon.Log[mark..]);
        Assert.Contains("edited in place", rig.Daemon.Log[mark..]);
        Assert.Equal(programs, rig.ProgramIds());
        Assert.Equal([3020], DroppedOf(rig, 3020, 3021));
        Assert.True(Counters(ListWithHandles(rig))[3020] >= 1, ListWithHandles(rig));

        var handle = Regex.Match(ListWithHandles(rig), @"tcp dport 3020 counter packets \d+ bytes \d+ drop # handle (\d+)");
        Assert.True(handle.Success, ListWithHandles(rig));
        mark = rig.Daemon.Log.Length;
        rig.Nft($"delete rule inet g in handle {handle.Groups[1].Value}");
        Assert.Contains("0 program(s) loaded, 2 kept with", rig.Daemon.Log[mark..]);
        Assert.Equal(programs, rig.ProgramIds());
        Assert.Empty(DroppedOf(rig, 3020));
    }
}
