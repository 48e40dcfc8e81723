using System.Text;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>The real bpfilterd binary behind bfnft, as an operator runs it.</summary>
public class DaemonProcessTests
{
    [Fact]
    public void SigtermRemovesTheSocketAndExitsCleanly()
    {
        RepoPaths.BuildInterposer();
        using var d = new DaemonProcess();
        Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(d.SocketPath));
        Assert.Equal(0, d.Terminate());
        Assert.False(File.Exists(d.SocketPath), d.Log);
        Assert.Contains("SIGTERM", d.Log);
    }

    [Fact]
    public void UnprivilegedPeerIsRefusedLikeTheKernelRefusesIt()
    {
        RepoPaths.BuildInterposer();
        using var d = new DaemonProcess("0666");
        string[] nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
        var viaDaemon = d.Bfnft(["list", "ruleset"], setpriv: nobody);
        var kernel = d.Ns.Exec("setpriv", [.. nobody, "nft", "list", "ruleset"]);
        Assert.Equal(kernel.Exit, viaDaemon.Exit);
        Assert.Equal(kernel.Stderr, viaDaemon.Stderr);
        Assert.Contains("lacks CAP_NET_ADMIN", d.Log);
    }
}
