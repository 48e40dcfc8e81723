using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    static ulong HandleOf(string listing, string rule) =>
        ulong.Parse(Regex.Match(listing, Regex.Escape(rule) + @"[^\n]* # handle (\d+)").Groups[1].Value);

    /// <summary>
    /// SIGKILLs the daemon right after the last ack and restarts it: the restored listing (returned) has the same
    /// rules, handles and places, the same programs are adopted, port 86's count is kept, and the same
    /// <paramref name="probed"/> ports are <paramref name="dropped"/>.
    /// </summary>
    static string KillRestartAndCompare(EnforcementRig rig, int[] dropped, params int[] probed)
    {
        var listing = ListWithHandles(rig);
        var counts = Counters(listing);
        Assert.True(counts[86] > 0, listing);
        var programs = rig.ProgramIds();

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        var restored = ListWithHandles(rig);
        Assert.Equal(WithoutCounters(listing), WithoutCounters(restored));
        Assert.Equal(programs, rig.ProgramIds());
        Assert.True(Counters(restored)[86] >= counts[86], restored);
        Assert.Equal(dropped, DroppedOf(rig, probed));
        return restored;
    }

    /// <summary>
    /// Commits that add, insert, replace or delete rules are appended to the journal as their changes (the state
    /// file is not rewritten); a SIGKILL right after their acks loses none of them: the restarted daemon lists
    /// the same rules with the same handles in the same places, adopts the programs they compiled to (the rule
    /// records carry the backend's counter slots) with their counts, and hands out the next handle.
    /// </summary>
    [Fact]
    public void RuleCommitsAreJournaledAndASigkillRightAfterTheAckLosesNone()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft($$"""
            table netdev x {
                chain ing {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
                    tcp dport 85 counter drop
                    tcp dport 90 counter drop
                }
            }
            """);
        var state = StateFile(rig);
        var journal = state + ".journal";
        var saved = File.ReadAllBytes(state);
        rig.Nft("add rule netdev x ing tcp dport 91 counter drop");
        var listing = ListWithHandles(rig);
        ulong h85 = HandleOf(listing, "tcp dport 85"), h90 = HandleOf(listing, "tcp dport 90");
        rig.Nft("add rule netdev x ing tcp dport 86 counter drop");
        rig.Nft($"insert rule netdev x ing position {h90} tcp dport 87 counter drop");
        rig.Nft($"replace rule netdev x ing handle {h85} tcp dport 88 counter drop");
        rig.Nft($"delete rule netdev x ing handle {h90}");
        Assert.Equal(saved, File.ReadAllBytes(state)); // not rewritten: the commits are in the journal
        Assert.True(File.Exists(journal));
        Assert.Equal([86, 87, 88, 91], DroppedOf(rig, 85, 86, 87, 88, 90, 91));
        var restored = KillRestartAndCompare(rig, [86, 87, 88, 91], 85, 86, 87, 88, 90, 91);
        // handles go on from the journal's counters
        var last = Regex.Matches(restored, @"# handle (\d+)").Max(m => ulong.Parse(m.Groups[1].Value));
        rig.Nft("add rule netdev x ing tcp dport 89 counter drop");
        Assert.Equal(last + 1, HandleOf(ListWithHandles(rig), "tcp dport 89"));
    }

    /// <summary>
    /// Thirty rule adds into a chain of 1,000 counted rules are thirty journal records of their own size (the
    /// backend's counter state goes as its change, not whole): the state file is not rewritten, and a SIGKILL after
    /// the last ack loses none: the same rules, handles, programs and counts after the restart.
    /// </summary>
    [Fact]
    public void ThirtyRuleAddsIntoAThousandCountedRulesAreSmallRecordsThatASigkillDoesNotLose()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        var rules = string.Join("\n", Enumerable.Range(0, 1000).Select(i => $"        ip saddr 10.200.{i / 256}.{i % 256} counter drop"));
        rig.Nft($$"""
            table netdev x {
                chain ing {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
            {{rules}}
                    tcp dport 85 counter drop
                }
            }
            """);
        var state = StateFile(rig);
        var journal = state + ".journal";
        var saved = File.ReadAllBytes(state);
        for (int i = 0; i < 30; i++) rig.Nft($"add rule netdev x ing ip saddr 10.201.0.{i} counter drop");
        rig.Nft("add rule netdev x ing tcp dport 86 counter drop");
        Assert.Equal(saved, File.ReadAllBytes(state)); // not rewritten: every add is in the journal
        var grown = new FileInfo(journal).Length;
        Assert.True(grown < 31 * 4096, $"the journal grew to {grown} bytes over 31 adds beside a state of {saved.Length}");
        Assert.Equal([85, 86], DroppedOf(rig, 85, 86, 87));
        KillRestartAndCompare(rig, [85, 86], 85, 86, 87);
    }
}
