namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// A chain split into tail-called segments keeps filtering while bpfilterd is gone (the pinned prog array
    /// holds every segment) and a restart adopts the program with all its segments.
    /// </summary>
    [Fact]
    public void ASplitChainKeepsFilteringWithoutTheDaemonAndIsAdoptedWithItsSegments()
    {
        const int n = 3000;
        var last = LargeChainTests.FirstPort + n - 1;
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft(LargeChainTests.Alternating(n));
        Assert.Contains("segment 1, slot(s) 1", rig.Explain());
        var programs = rig.ProgramIds();

        rig.Daemon.Kill();
        Assert.False(rig.Delivered(last)); // the last segment still runs
        Assert.True(rig.Delivered(last + 1));

        rig.Daemon.Restart();
        Assert.Contains(", 1 with their running program", rig.Daemon.Log);
        Assert.Equal(programs, rig.ProgramIds());
        Assert.False(rig.Delivered(last));
        Assert.True(rig.Delivered(last + 1));
    }
}
