namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// Only a peer holding CAP_NET_ADMIN is served, as the kernel serves nfnetlink. The socket is
/// made world-writable (as --socket-mode 0666 does) so that the credential check alone decides;
/// the kernel, run with the same credentials, is the oracle for what nft then prints.
/// </summary>
public class PrivilegeTests
{
    static readonly string[] Nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    static readonly string[] NobodyWithNetAdmin = [.. Nobody, "--inh-caps", "+net_admin", "--ambient-caps", "+net_admin"];

    static ProcessResult Kernel(RelayRig rig, string[] cred, params string[] nft) =>
        rig.KernelNs.Exec("setpriv", [.. cred, "nft", .. nft]);

    static ProcessResult ThroughDaemon(RelayRig rig, string[] cred, params string[] nft) =>
        rig.ClientNs.Exec("setpriv", [.. cred, RepoPaths.Bfnft, .. nft], env: rig.Env);

    static void AssertSame(ProcessResult kernel, ProcessResult daemon)
    {
        Assert.Equal(kernel.Exit, daemon.Exit);
        Assert.Equal(kernel.Stdout, daemon.Stdout);
        Assert.Equal(kernel.Stderr, daemon.Stderr);
    }

    [Fact]
    public void PeerWithoutNetAdminGetsEpermAndTouchesNothing()
    {
        using var rig = new RelayRig((UnixFileMode)0x1b6);
        int before = rig.Endpoint.Calls;
        var list = ThroughDaemon(rig, Nobody, "list", "ruleset");
        AssertSame(Kernel(rig, Nobody, "list", "ruleset"), list);
        Assert.Contains("Operation not permitted (you must be root)", list.Stderr);
        var add = ThroughDaemon(rig, Nobody, "add", "table", "ip", "t");
        AssertSame(Kernel(rig, Nobody, "add", "table", "ip", "t"), add);
        Assert.NotEqual(0, add.Exit);
        Assert.Equal(before, rig.Endpoint.Calls);
        Assert.Equal("", rig.Bfnft(["list", "ruleset"]).Stdout);
    }

    [Fact]
    public void SameUserWithNetAdminIsServed()
    {
        using var rig = new RelayRig((UnixFileMode)0x1b6);
        AssertSame(Kernel(rig, NobodyWithNetAdmin, "add", "table", "ip", "t"), ThroughDaemon(rig, NobodyWithNetAdmin, "add", "table", "ip", "t"));
        var list = ThroughDaemon(rig, NobodyWithNetAdmin, "list", "ruleset");
        AssertSame(Kernel(rig, NobodyWithNetAdmin, "list", "ruleset"), list);
        Assert.Equal("table ip t {\n}\n", list.Stdout);
    }

    [Fact]
    public void RootWithoutCapabilitiesIsRefusedAsByTheKernel()
    {
        // The kernel checks CAP_NET_ADMIN, not uid 0: root that dropped its capabilities is refused.
        using var rig = new RelayRig();
        string[] bareRoot = ["--bounding-set", "-all", "--inh-caps", "-all"];
        var r = ThroughDaemon(rig, bareRoot, "list", "ruleset");
        AssertSame(Kernel(rig, bareRoot, "list", "ruleset"), r);
        Assert.Contains("Operation not permitted", r.Stderr);
        Assert.Equal(0, rig.Endpoint.Calls);
    }

    [Fact]
    public void DefaultSocketModeKeepsOtherUsersOut()
    {
        using var rig = new RelayRig();
        var r = ThroughDaemon(rig, NobodyWithNetAdmin, "list", "ruleset");
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("Permission denied", r.Stderr);
        Assert.Equal(0, rig.Endpoint.Calls);
    }
}
