using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Bpfilter.Daemon.Metrics;

/// <summary>
/// Where the metrics endpoint listens (--metrics): <c>tcp:ADDRESS:PORT</c> on a loopback address only
/// (127.0.0.0/8 or ::1, written [::1]:PORT) of the daemon's namespace, or <c>unix:PATH</c>, a socket file
/// created with mode 0600.
/// </summary>
public sealed record MetricsListen(IPEndPoint? Tcp, string? UnixPath)
{
    public const int DefaultPort = 9632;

    public static MetricsListen? Parse(string spec, out string error)
    {
        error = "";
        if (spec.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = spec["unix:".Length..];
            if (path.Length == 0 || path.Contains('\0')) { error = "--metrics unix: needs a socket path"; return null; }
            return new MetricsListen(null, Path.GetFullPath(path));
        }
        if (!spec.StartsWith("tcp:", StringComparison.Ordinal))
        {
            error = $"--metrics needs tcp:ADDRESS:PORT or unix:PATH, not '{spec}'";
            return null;
        }
        var rest = spec["tcp:".Length..];
        int colon = rest.LastIndexOf(':');
        var host = colon > 0 ? rest[..colon] : "";
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        else if (host.Contains(':')) host = ""; // an IPv6 address must be bracketed: [::1]:9632
        if (!IPAddress.TryParse(host, out var address) || !int.TryParse(rest[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > 65535)
        {
            error = $"--metrics tcp: needs ADDRESS:PORT (e.g. tcp:127.0.0.1:{DefaultPort} or tcp:[::1]:{DefaultPort}), not '{spec}'";
            return null;
        }
        if (!IPAddress.IsLoopback(address))
        {
            error = $"--metrics listens on a loopback address only (127.0.0.1 or ::1), not {address}: the counters show the ruleset";
            return null;
        }
        return new MetricsListen(new IPEndPoint(address, port), null);
    }

    public override string ToString() => Tcp is { } ep ? $"http://{ep}/metrics" : $"unix:{UnixPath} (GET /metrics)";

    /// <summary>A listening socket bound to the address; a Unix socket file gets mode 0600 (a stale one is replaced).</summary>
    internal Socket Bind(Action<string> log)
    {
        if (Tcp is { } ep)
        {
            var tcp = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                tcp.Bind(ep);
                tcp.Listen(16);
                return tcp;
            }
            catch
            {
                tcp.Dispose();
                throw;
            }
        }
        return Server.UnixListener.Bind(UnixPath!, UnixFileMode.UserRead | UnixFileMode.UserWrite, 16, log);
    }
}
