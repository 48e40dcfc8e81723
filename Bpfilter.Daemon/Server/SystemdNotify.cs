using System.Net.Sockets;
using System.Text;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. With Type=notify the unit is
/// "started" only once the socket answers nft, so bfnft-load.service (After=bpfilterd.service) never
/// races the daemon's start. Without $NOTIFY_SOCKET (not under systemd) it does nothing.
/// </summary>
public static class SystemdNotify
{
    /// <summary>Sends <paramref name="state"/> (e.g. "READY=1"); returns whether a notify socket was there to send to.</summary>
    public static bool Send(string state, Action<string>? log = null)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path)) return false;
        if (path[0] == '@') path = "\0" + path[1..]; // abstract namespace
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            s.Send(Encoding.UTF8.GetBytes(state));
            return true;
        }
        catch (SocketException e)
        {
            log?.Invoke($"cannot notify systemd at {path.TrimStart('\0')}: {e.Message}");
            return false;
        }
    }
}
