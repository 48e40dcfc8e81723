using System.Text;

namespace Bpfilter.Daemon.Metrics;

/// <summary>
/// The HTTP/1.x the metrics endpoint speaks, and no more: a request head (request line and header lines, at
/// most <see cref="MaxHeadBytes"/>) is read and checked byte by byte, GET or HEAD of /metrics is answered with
/// the exposition, anything else with the matching error status; every response closes the connection.
/// </summary>
public static class HttpExchange
{
    public const int MaxHeadBytes = 8192;
    public const string MetricsPath = "/metrics";

    /// <summary>The length of the request head in <paramref name="buffer"/> through its blank line (CRLF CRLF, or LF LF), or -1 while it is incomplete.</summary>
    public static int HeadLength(ReadOnlySpan<byte> buffer)
    {
        for (int i = 0; i < buffer.Length; i++)
        {
            if (buffer[i] != '\n') continue;
            if (i + 1 < buffer.Length && buffer[i + 1] == '\n') return i + 2;
            if (i + 2 < buffer.Length && buffer[i + 1] == '\r' && buffer[i + 2] == '\n') return i + 3;
        }
        return -1;
    }

    /// <summary>The response to a complete request head; <paramref name="scrape"/> is called only for GET or HEAD of /metrics.</summary>
    public static byte[] Respond(ReadOnlySpan<byte> head, Func<string> scrape)
    {
        var lines = Lines(head);
        if (lines == null || lines.Count == 0) return Status(400, "Bad Request", "malformed request\n");
        var parts = lines[0].Split(' ');
        if (parts.Length != 3 || parts[0].Length == 0 || !parts[0].All(c => c is >= 'A' and <= 'Z'))
            return Status(400, "Bad Request", "malformed request line\n");
        var (method, target, version) = (parts[0], parts[1], parts[2]);
        if (!version.StartsWith("HTTP/", StringComparison.Ordinal)) return Status(400, "Bad Request", "malformed request line\n");
        if (version is not ("HTTP/1.0" or "HTTP/1.1")) return Status(505, "HTTP Version Not Supported", "HTTP/1.0 and HTTP/1.1 only\n");
        for (int i = 1; i < lines.Count; i++)
            if (lines[i].IndexOf(':') <= 0 || lines[i][0] is ' ' or '\t') return Status(400, "Bad Request", "malformed header line\n");
        if (target.Length == 0 || target[0] != '/') return Status(400, "Bad Request", "origin-form request target expected\n");
        int query = target.IndexOf('?');
        var path = query < 0 ? target : target[..query];
        if (method is not ("GET" or "HEAD")) return Status(405, "Method Not Allowed", "GET or HEAD only\n", "Allow: GET, HEAD\r\n");
        if (path != MetricsPath) return Status(404, "Not Found", $"not found: the metrics are at {MetricsPath}\n");
        string body;
        try
        {
            body = scrape();
        }
        catch (Exception e)
        {
            return Status(500, "Internal Server Error", $"bpfilterd: reading the metrics failed: {e.Message}\n");
        }
        return Response(200, "OK", Exposition.ContentType, Encoding.UTF8.GetBytes(body), headOnly: method == "HEAD");
    }

    public static byte[] Status(int code, string reason, string text, string extraHeaders = "") =>
        Response(code, reason, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes(text), false, extraHeaders);

    static byte[] Response(int code, string reason, string contentType, byte[] body, bool headOnly, string extraHeaders = "")
    {
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {code} {reason}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\n" +
            $"{extraHeaders}Connection: close\r\n\r\n");
        return headOnly ? head : [.. head, .. body];
    }

    /// <summary>The head's lines without their CR LF, up to the blank line; null when a byte is not visible ASCII, a space or a tab.</summary>
    static List<string>? Lines(ReadOnlySpan<byte> head)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < head.Length; i++)
        {
            byte b = head[i];
            if (b == '\n')
            {
                int end = i > start && head[i - 1] == '\r' ? i - 1 : i;
                if (end == start) return lines; // the blank line ends the head
                lines.Add(Encoding.ASCII.GetString(head[start..end]));
                start = i + 1;
            }
            else if (b == '\r' ? i + 1 >= head.Length || head[i + 1] != '\n' : b is (< 0x20 or > 0x7e) and not (byte)'\t') return null;
        }
        return null; // no blank line: not a complete head
    }
}
