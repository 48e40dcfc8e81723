using System.Text;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// A set of 100,000 addresses loaded with one `nft -f` (the path where each NEWSETELEM adds its new keys in
    /// one walk of the element tree) survives a SIGKILL and restart with the same listing, the same program and the
    /// same answers: a duplicate `create element` is EEXIST, a new one is added, and the packet path still drops.
    /// </summary>
    [Fact]
    public void A100kSetLoadedWithNftFSurvivesARestartWithTheSameListing()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        var sb = new StringBuilder("table netdev x {\n  set block {\n    type ipv4_addr\n    elements = { ");
        for (int i = 0; i < 100_000; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}");
        }
        sb.Append($" }}\n  }}\n  chain ing {{\n    type filter hook ingress device \"{rig.FwDev}\" priority 0; policy accept;\n"
            + "    ip saddr @block tcp dport 85 counter drop\n  }\n}\n");
        rig.Nft(sb.ToString());
        Assert.False(Dropped(rig, 85));
        rig.Nft($"add element netdev x block {{ {EnforcementRig.PeerAddr} }}");
        Assert.True(Dropped(rig, 85));
        var listing = ListWithHandles(rig);
        Assert.Contains("10.1.134.159", listing); // the 100,000th address
        var programs = rig.ProgramIds();

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        Assert.Equal(WithoutCounters(listing), WithoutCounters(ListWithHandles(rig)));
        Assert.Equal(programs, rig.ProgramIds());
        Assert.True(Dropped(rig, 85));

        var dup = rig.Nft("create element netdev x block { 10.0.200.7 }", expectSuccess: false);
        Assert.NotEqual(0, dup.Exit);
        Assert.Contains("File exists", dup.Stderr);
        rig.Nft("create element netdev x block { 10.2.0.1 }");
        Assert.Contains("10.2.0.1", rig.ListRuleset());
    }
}
