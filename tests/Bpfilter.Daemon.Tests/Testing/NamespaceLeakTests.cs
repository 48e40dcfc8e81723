using Bpfilter.Testing;
using Bpfilter.Daemon.Tests.Enforcement;

namespace Bpfilter.Daemon.Tests.Testing;

/// <summary>
/// The harness's namespaces when a test fails or a helper throws (not when the test process is killed: see
/// <see cref="NetNs.SweepOrphans"/>): each namespace a helper made is gone once the failure reached the test.
/// </summary>
public sealed class NamespaceLeakTests
{
    /// <summary>
    /// Fails unless <paramref name="body"/> throws having made namespaces, none of which is left; deletes any that is
    /// (so that the failing test leaks nothing itself).
    /// </summary>
    static void LeavesNone(Action body)
    {
        var (made, thrown) = NetNs.Made(body);
        var left = made.Where(NetNs.Exists).ToList();
        foreach (var name in left) ProcessRunner.Run("ip", ["netns", "del", name]);
        Assert.NotNull(thrown);
        Assert.NotEmpty(made);
        Assert.True(left.Count == 0, $"left behind: {string.Join(", ", left)} of {string.Join(", ", made)} after {thrown.Message}");
    }

    /// <summary>
    /// A daemon that cannot start (here an unknown --placement; under load, one that did not listen in time) makes the
    /// constructor of the kernel-and-bpfilterd sides throw. Before, the kernel's namespace, made first, was left.
    /// </summary>
    [Fact]
    public void SidesWhoseDaemonDoesNotStartLeaveNoNamespace() =>
        LeavesNone(() => new PacketPathSetTrafficTests.Sides("no-such-placement").Dispose());

    [Fact]
    public void ADaemonThatDoesNotStartLeavesNoNamespace() =>
        LeavesNone(() => DaemonProcess.Enforcing(["--placement", "no-such-placement"]).Dispose());

    [Fact]
    public void ATestThatFailsInsideItsNamespacesLeavesNone() =>
        LeavesNone(() =>
        {
            using var pair = new VethPair();
            using var ns = NetNs.Create();
            Assert.Fail("a failing test");
        });

    [Fact]
    public void ANamespaceIsNamedAfterTheProcessThatMadeIt()
    {
        using var ns = new NetNs();
        Assert.Matches($@"^bft-\d+-{Environment.ProcessId}-[0-9a-f]{{8}}$", ns.Name);
    }

    /// <summary>
    /// What a killed test process left (its pid no longer exists) is deleted; what a running one made (this process's
    /// own), and a name that says no process (the older bft-&lt;random&gt;), stay.
    /// </summary>
    [Fact]
    public void TheSweepDeletesOnlyTheNamespacesOfTestProcessesThatAreGone()
    {
        using var mine = new NetNs();
        var pidNs = mine.Name.Split('-')[1];
        // a pid that existed and no longer does: a process that ran and was waited for
        var gonePid = ProcessRunner.Run("true", []).Pid;
        Assert.False(Directory.Exists($"/proc/{gonePid}"));
        var orphan = $"bft-{pidNs}-{gonePid}-{Guid.NewGuid().ToString("N")[..8]}";
        var unknown = $"bft-{Guid.NewGuid().ToString("N")[..12]}";
        var otherPidNs = $"bft-1-{gonePid}-{Guid.NewGuid().ToString("N")[..8]}";
        var made = new[] { orphan, unknown, otherPidNs };
        try
        {
            foreach (var n in made) ProcessRunner.Check("ip", "netns", "add", n);
            var removed = NetNs.SweepOrphans();
            Assert.Contains(orphan, removed);
            Assert.False(NetNs.Exists(orphan));
            Assert.True(NetNs.Exists(mine.Name));
            Assert.True(NetNs.Exists(unknown));
            Assert.True(NetNs.Exists(otherPidNs));
        }
        finally
        {
            foreach (var n in made.Where(NetNs.Exists)) ProcessRunner.Run("ip", ["netns", "del", n]);
        }
    }
}
