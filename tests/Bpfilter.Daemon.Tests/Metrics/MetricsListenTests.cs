using Bpfilter.Daemon.Metrics;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>--metrics: loopback TCP or a Unix socket, nothing else.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MetricsListenTests
{
    [Theory]
    [InlineData("tcp:127.0.0.1:9632", "http://127.0.0.1:9632/metrics")]
    [InlineData("tcp:127.0.0.53:1", "http://127.0.0.53:1/metrics")]
    [InlineData("tcp:[::1]:9632", "http://[::1]:9632/metrics")]
    [InlineData("unix:/run/bpfilter/metrics.sock", "unix:/run/bpfilter/metrics.sock (GET /metrics)")]
    public void Accepted(string spec, string shown)
    {
        var listen = MetricsListen.Parse(spec, out var error);
        Assert.True(listen != null, error);
        Assert.Equal(shown, listen.ToString());
    }

    [Theory]
    [InlineData("tcp:0.0.0.0:9632", "loopback")]
    [InlineData("tcp:198.18.7.1:9632", "loopback")]
    [InlineData("tcp:[::]:9632", "loopback")]
    [InlineData("tcp:::1:9632", "ADDRESS:PORT")]
    [InlineData("tcp:localhost:9632", "ADDRESS:PORT")]
    [InlineData("tcp:127.0.0.1", "ADDRESS:PORT")]
    [InlineData("tcp:127.0.0.1:0", "ADDRESS:PORT")]
    [InlineData("tcp:127.0.0.1:65536", "ADDRESS:PORT")]
    [InlineData("tcp:127.0.0.1:+80", "ADDRESS:PORT")]
    [InlineData("unix:", "socket path")]
    [InlineData("9632", "tcp:ADDRESS:PORT or unix:PATH")]
    [InlineData("http://127.0.0.1:9632", "tcp:ADDRESS:PORT or unix:PATH")]
    public void Refused(string spec, string why)
    {
        Assert.Null(MetricsListen.Parse(spec, out var error));
        Assert.Contains(why, error);
    }

    [Fact]
    public void TheOptionIsOffByDefaultAndParsed()
    {
        Assert.Null(Options.Parse([], out _)!.Metrics);
        Assert.True(Options.Parse(["--metrics", "unix:/tmp/m.sock"], out _)!.BpfStats);
        Assert.False(Options.Parse(["--metrics", "unix:/tmp/m.sock", "--no-bpf-stats"], out _)!.BpfStats);
        Assert.Equal(9632, Options.Parse(["--metrics", "tcp:127.0.0.1:9632"], out _)!.Metrics!.Tcp!.Port);
        Assert.Null(Options.Parse(["--metrics", "tcp:10.0.0.1:1"], out var error));
        Assert.Contains("loopback", error);
        Assert.Null(Options.Parse(["--metrics"], out error));
        Assert.Contains("--metrics needs", error);
    }
}
