namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// Element-only commits are appended to the state's element journal instead of rewriting the state file
    /// (whose size grows with the sets); a restart, after SIGKILL or SIGTERM, replays the journal: the same
    /// elements, handles and programs, and the first commit after it that changes more than elements starts
    /// the state anew.
    /// </summary>
    [Fact]
    public void ElementOnlyCommitsAreJournaledAndARestartReplaysThem()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft($$"""
            table netdev x {
                set block {
                    type ipv4_addr
                    elements = { 10.1.0.1, 10.1.0.2 }
                }
                chain ing {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
                    ip saddr @block tcp dport 85 counter drop
                }
            }
            """);
        var state = StateFile(rig);
        var journal = state + ".journal";
        var saved = File.ReadAllBytes(state);
        Assert.False(Dropped(rig, 85));
        rig.Nft($"add element netdev x block {{ {EnforcementRig.PeerAddr}, 10.1.0.3 }}");
        rig.Nft("delete element netdev x block { 10.1.0.1 }");
        Assert.True(Dropped(rig, 85));
        Assert.Equal(saved, File.ReadAllBytes(state)); // not rewritten: the two commits are in the journal
        Assert.True(File.Exists(journal));
        var listing = ListWithHandles(rig);
        Assert.Contains("10.1.0.3", listing);
        Assert.DoesNotContain("10.1.0.1,", listing);
        var programs = rig.ProgramIds();

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        Assert.Equal(WithoutCounters(listing), WithoutCounters(ListWithHandles(rig)));
        Assert.Equal(programs, rig.ProgramIds());
        Assert.True(Dropped(rig, 85));

        // after a restart the first element commit writes the whole state (this process starts its own journal)
        rig.Nft("add element netdev x block { 10.1.0.4 }");
        rig.Nft("delete element netdev x block { 10.1.0.2 }");
        listing = ListWithHandles(rig);
        Assert.Equal(0, rig.Daemon.Terminate());
        rig.Daemon.Restart();
        Assert.Equal(WithoutCounters(listing), WithoutCounters(ListWithHandles(rig)));
        Assert.Equal(programs, rig.ProgramIds());

        // a commit that changes more than elements saves everything and removes the journal
        rig.Nft("add element netdev x block { 10.1.0.5 }"); // the first after the restart: the whole state
        Assert.False(File.Exists(journal));
        rig.Nft("add element netdev x block { 10.1.0.6 }");
        Assert.True(File.Exists(journal));
        rig.Nft("add chain netdev x other");
        Assert.False(File.Exists(journal));
        Assert.True(Dropped(rig, 85));
    }
}
