using System.Net.Sockets;
using System.Text;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>A plain HTTP/1.1 client for the metrics endpoint on a Unix socket: what a scraper behind a socket proxy sends.</summary>
internal static class MetricsClient
{
    public static Socket Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(path));
        return s;
    }

    /// <summary>Everything the server sends until it closes (at most 10 s between reads).</summary>
    public static string ReadToEnd(Socket s)
    {
        s.ReceiveTimeout = 10_000;
        var all = new MemoryStream();
        var buf = new byte[16384];
        int n;
        while ((n = s.Receive(buf)) > 0) all.Write(buf, 0, n);
        return Encoding.UTF8.GetString(all.ToArray());
    }

    /// <summary>GET <paramref name="target"/>: the status line, the headers and the body (checked against Content-Length).</summary>
    public static (string Status, Dictionary<string, string> Headers, string Body) Get(string path, string target = "/metrics")
    {
        using var s = Connect(path);
        s.Send(Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: bpfilterd\r\nAccept: text/plain\r\n\r\n"));
        return Split(ReadToEnd(s));
    }

    public static (string Status, Dictionary<string, string> Headers, string Body) Split(string response)
    {
        int end = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(end > 0, $"no response head in '{response}'");
        var lines = response[..end].Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(": ", 2)).ToDictionary(p => p[0], p => p[1]);
        var body = response[(end + 4)..];
        Assert.Equal(int.Parse(headers["Content-Length"]), Encoding.UTF8.GetByteCount(body));
        return (lines[0], headers, body);
    }

    /// <summary>GET /metrics, asserting 200 and the 0.0.4 content type, read by the strict parser.</summary>
    public static Dictionary<string, MetricFamily> Scrape(string path)
    {
        var (status, headers, body) = Get(path);
        Assert.Equal("HTTP/1.1 200 OK", status);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", headers["Content-Type"]);
        return ExpositionParser.Parse(body);
    }
}
