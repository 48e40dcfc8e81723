using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Bpfilter.Daemon.Metrics;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>The metrics endpoint's socket handling, on a Unix socket: one answer per connection, and its limits.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class MetricsServerTests : IAsyncLifetime
{
    static readonly TimeSpan PeerTimeout = TimeSpan.FromSeconds(2);
    readonly string _path = Path.Combine(Path.GetTempPath(), $"bfm-{Guid.NewGuid():N}"[..16] + ".sock");
    int _scrapes;
    MetricsServer? _server;

    public Task InitializeAsync()
    {
        _server = new MetricsServer(MetricsListen.Parse("unix:" + _path, out _)!, () =>
        {
            Interlocked.Increment(ref _scrapes);
            return "# HELP g h\n# TYPE g gauge\ng 1\n";
        }, requestTimeout: PeerTimeout);
        _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_server != null) await _server.DisposeAsync();
        Assert.False(File.Exists(_path), "the socket file is removed when the server stops");
    }

    Socket Connect() => MetricsClient.Connect(_path);

    static string ReadToEnd(Socket s) => MetricsClient.ReadToEnd(s);

    [Fact]
    public void TheSocketIsPrivateAndAnswersOneScrapePerConnection()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));
        for (int i = 0; i < 3; i++)
        {
            using var s = Connect();
            s.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"u8);
            var answer = ReadToEnd(s); // the server closes after its answer
            Assert.StartsWith("HTTP/1.1 200 OK\r\n", answer);
            Assert.EndsWith("\r\n\r\n# HELP g h\n# TYPE g gauge\ng 1\n", answer);
        }
        Assert.Equal(3, _scrapes);
    }

    [Fact]
    public void ARequestSentByteByByteIsAnswered()
    {
        using var s = Connect();
        foreach (var b in "GET /metrics HTTP/1.0\r\n\r\n"u8.ToArray()) s.Send([b]);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", ReadToEnd(s));
    }

    [Fact]
    public void AnOversizedHeadIsRefusedWithoutAScrape()
    {
        using var s = Connect();
        var head = "GET /metrics HTTP/1.1\r\nX: " + new string('a', HttpExchange.MaxHeadBytes) + "\r\n\r\n";
        try { s.Send(Encoding.ASCII.GetBytes(head)); } catch (SocketException) { } // the server may close before all of it is read
        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", ReadToEnd(s));
        Assert.Equal(0, _scrapes);
    }

    [Fact]
    public void APeerThatSendsNothingIsClosedAtTheTimeout()
    {
        using var s = Connect();
        var clock = Stopwatch.StartNew();
        Assert.Equal("", ReadToEnd(s));
        Assert.InRange(clock.Elapsed.TotalSeconds, PeerTimeout.TotalSeconds * 0.9, 15);
        Assert.Equal(0, _scrapes);
    }

    [Fact]
    public void ConnectionsBeyondTheLimitAreClosedAndTheServerStillAnswersAfterwards()
    {
        var idle = Enumerable.Range(0, MetricsServer.MaxConnections).Select(_ => Connect()).ToList();
        try
        {
            Thread.Sleep(200); // let the server accept them
            using var extra = Connect();
            var clock = Stopwatch.StartNew();
            Assert.Equal("", ReadToEnd(extra));
            Assert.True(clock.Elapsed < PeerTimeout * 0.9, $"closed at once, not at the timeout ({clock.Elapsed})");
        }
        finally
        {
            foreach (var s in idle) s.Dispose();
        }
        Thread.Sleep(500); // the idle ones, closed, free their places
        using var again = Connect();
        again.Send("GET /metrics HTTP/1.1\r\n\r\n"u8);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", ReadToEnd(again));
    }
}
