using System.Net;
using System.Net.Sockets;

namespace Bpfilter.Testing;

/// <summary>
/// Two network namespaces with unique names joined by a veth pair (10.213.x.1 ↔ 10.213.x.2), removed
/// on dispose even when a test fails. Code that must run inside a namespace (attaching programs,
/// interface lookups) runs on a dedicated thread that setns()es into it.
/// </summary>
public sealed class VethPair : IDisposable
{
    public const string ClientDevice = "h5c0", ServerDevice = "h5s0";
    public NetNs ClientNs { get; }
    public NetNs ServerNs { get; }
    public string Client => ClientNs.Name;
    public string Server => ServerNs.Name;
    public string ClientAddress { get; }
    public string ServerAddress { get; }

    public VethPair()
    {
        var id = Random.Shared.Next(1, 250);
        ClientAddress = $"10.213.{id}.1";
        ServerAddress = $"10.213.{id}.2";
        ClientNs = new NetNs();
        try
        {
            ServerNs = new NetNs();
        }
        catch
        {
            ClientNs.Dispose();
            throw;
        }
        try
        {
            ClientNs.AddVeth(ClientDevice, ServerNs, ServerDevice);
            ClientNs.Ip("addr", "add", ClientAddress + "/24", "dev", ClientDevice);
            ServerNs.Ip("addr", "add", ServerAddress + "/24", "dev", ServerDevice);
            ClientNs.Ip("link", "set", ClientDevice, "up");
            ServerNs.Ip("link", "set", ServerDevice, "up");
            ClientNs.Ip("link", "set", "lo", "up");
            ServerNs.Ip("link", "set", "lo", "up");
            ClientNs.WaitUntilUp(ClientDevice);
            ServerNs.WaitUntilUp(ServerDevice);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Sends one UDP datagram of <paramref name="payload"/> bytes from client to server port; true when it arrived.</summary>
    public bool SendUdp(int port, int payload = 32)
    {
        using var server = InNamespace(Server, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(ServerAddress), port));
            s.ReceiveTimeout = 700;
            return s;
        });
        using var client = InNamespace(Client, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        client.SendTo(new byte[payload], new IPEndPoint(IPAddress.Parse(ServerAddress), port));
        try
        {
            var buf = new byte[2048];
            return server.Receive(buf) == payload;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a thread inside namespace <paramref name="ns"/> (a name);
    /// what it throws comes back wrapped in an AggregateException.
    /// </summary>
    public static T InNamespace<T>(string ns, Func<T> action)
    {
        try
        {
            return NetNs.Run($"/run/netns/{ns}", action);
        }
        catch (Exception e)
        {
            throw new AggregateException(e);
        }
    }

    public void Dispose()
    {
        ClientNs.Dispose();
        ServerNs?.Dispose();
    }
}
