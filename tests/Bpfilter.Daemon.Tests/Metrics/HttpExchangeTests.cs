using System.Text;
using Bpfilter.Daemon.Metrics;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>The request head reader and the responses of the metrics endpoint.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class HttpExchangeTests
{
    const string Body = "# HELP g h\n# TYPE g gauge\ng 1\n";

    static (string Status, Dictionary<string, string> Headers, string Body, int Scrapes) Exchange(string request)
    {
        int scrapes = 0;
        var bytes = Encoding.UTF8.GetBytes(request);
        int head = HttpExchange.HeadLength(bytes);
        Assert.True(head > 0, "incomplete head");
        var text = Encoding.UTF8.GetString(HttpExchange.Respond(bytes.AsSpan(0, head), () => { scrapes++; return Body; }));
        int end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var lines = text[..end].Split("\r\n");
        var headers = lines.Skip(1).Select(l => l.Split(": ", 2)).ToDictionary(p => p[0], p => p[1]);
        var body = text[(end + 4)..];
        if (!request.StartsWith("HEAD", StringComparison.Ordinal)) Assert.Equal(Encoding.UTF8.GetByteCount(body), int.Parse(headers["Content-Length"]));
        Assert.Equal("close", headers["Connection"]);
        return (lines[0], headers, body, scrapes);
    }

    [Theory]
    [InlineData("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9632\r\nAccept: */*\r\n\r\n")]
    [InlineData("GET /metrics HTTP/1.0\r\n\r\n")]
    [InlineData("GET /metrics?name[]=x HTTP/1.1\nHost: x\n\n")]
    public void GetMetricsAnswersTheExposition(string request)
    {
        var r = Exchange(request);
        Assert.Equal("HTTP/1.1 200 OK", r.Status);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", r.Headers["Content-Type"]);
        Assert.Equal(Body, r.Body);
        Assert.Equal(1, r.Scrapes);
    }

    [Fact]
    public void HeadAnswersTheHeadersOnly()
    {
        var r = Exchange("HEAD /metrics HTTP/1.1\r\n\r\n");
        Assert.Equal("HTTP/1.1 200 OK", r.Status);
        Assert.Equal(Encoding.UTF8.GetByteCount(Body).ToString(), r.Headers["Content-Length"]);
        Assert.Equal("", r.Body);
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found")]
    [InlineData("GET /metrics/ HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found")]
    [InlineData("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed")]
    [InlineData("GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported")]
    [InlineData("GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET  /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("get /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET http://x/metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /metrics HTTP/1.1\r\nX: a\u0001b\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    [InlineData("GET /m\u00e9trics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request")]
    public void AnythingElseGetsItsErrorAndNoScrape(string request, string status)
    {
        var r = Exchange(request);
        Assert.Equal(status, r.Status);
        Assert.Equal(0, r.Scrapes);
        if (status.Contains("405")) Assert.Equal("GET, HEAD", r.Headers["Allow"]);
    }

    [Fact]
    public void AFailingScrapeIsA500()
    {
        var bytes = Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\n\r\n");
        var text = Encoding.UTF8.GetString(HttpExchange.Respond(bytes, () => throw new IOException("kernel said no")));
        Assert.StartsWith("HTTP/1.1 500 Internal Server Error\r\n", text);
        Assert.EndsWith("reading the metrics failed: kernel said no\n", text);
    }

    [Theory]
    [InlineData("", -1)]
    [InlineData("GET /metrics HTTP/1.1\r\n", -1)]
    [InlineData("GET /metrics HTTP/1.1\r\nHost: x\r\n", -1)]
    [InlineData("GET /metrics HTTP/1.1\r\n\r\n", 25)]
    [InlineData("GET / HTTP/1.0\n\nbody", 16)]
    public void TheHeadEndsAtTheFirstBlankLine(string received, int length) =>
        Assert.Equal(length, HttpExchange.HeadLength(Encoding.ASCII.GetBytes(received)));
}
