using System.Net.Sockets;
using System.Text;
using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>READY=1 reaches $NOTIFY_SOCKET as one datagram, as sd_notify sends it.</summary>
public class SystemdNotifyTests
{
    [Fact]
    public void SendsStateToNotifySocketAndNothingWithoutOne()
    {
        using var dir = new TempSocketDir();
        var path = dir.Socket("notify");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.ReceiveTimeout = 5000;
        var saved = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        try
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", path);
            Assert.True(SystemdNotify.Send("READY=1"));
            var buf = new byte[64];
            int n = listener.Receive(buf);
            Assert.Equal("READY=1", Encoding.UTF8.GetString(buf, 0, n));
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
            Assert.False(SystemdNotify.Send("READY=1"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", saved);
        }
    }
}
