using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// Two network namespaces with unique names joined by a veth pair (10.x.y.1 ↔ 10.x.y.2), removed on
/// dispose even when a test fails. Code that must run inside a namespace (attaching programs,
/// interface lookups) runs on a dedicated thread that setns()es into it.
/// </summary>
public sealed partial class VethPair : IDisposable
{
    public string Client { get; }
    public string Server { get; }
    public string ClientAddress { get; }
    public string ServerAddress { get; }
    public const string ClientDevice = "h5c0", ServerDevice = "h5s0";

    public VethPair()
    {
        var id = Random.Shared.Next(1, 250);
        var suffix = Guid.NewGuid().ToString("N")[..8];
        Client = $"h5c-{suffix}";
        Server = $"h5s-{suffix}";
        ClientAddress = $"10.213.{id}.1";
        ServerAddress = $"10.213.{id}.2";
        try
        {
            Sh($"ip netns add {Client}");
            Sh($"ip netns add {Server}");
            Sh($"ip link add {ClientDevice} netns {Client} type veth peer name {ServerDevice} netns {Server}");
            Sh($"ip -n {Client} addr add {ClientAddress}/24 dev {ClientDevice}");
            Sh($"ip -n {Server} addr add {ServerAddress}/24 dev {ServerDevice}");
            Sh($"ip -n {Client} link set {ClientDevice} up");
            Sh($"ip -n {Server} link set {ServerDevice} up");
            Sh($"ip -n {Client} link set lo up");
            Sh($"ip -n {Server} link set lo up");
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
            var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
                System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
            s.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse(ServerAddress), port));
            s.ReceiveTimeout = 700;
            return s;
        });
        using var client = InNamespace(Client, () => new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp));
        client.SendTo(new byte[payload], new System.Net.IPEndPoint(System.Net.IPAddress.Parse(ServerAddress), port));
        try
        {
            var buf = new byte[2048];
            return server.Receive(buf) == payload;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>Runs <paramref name="action"/> on a thread inside namespace <paramref name="ns"/>.</summary>
    public static T InNamespace<T>(string ns, Func<T> action)
    {
        T result = default!;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                using var f = File.OpenHandle($"/var/run/netns/{ns}");
                if (Setns((int)f.DangerousGetHandle(), 0x40000000) != 0)
                    throw new InvalidOperationException($"setns {ns}: errno {Marshal.GetLastPInvokeError()}");
                result = action();
            }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        if (error is not null) throw new AggregateException(error);
        return result;
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int Setns(int fd, int nstype);

    private static void Sh(string cmd)
    {
        var parts = cmd.Split(' ', 2);
        if (Run(parts[0], parts[1]) != 0) throw new InvalidOperationException($"'{cmd}' failed");
    }

    private static int Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        if (!p.WaitForExit(10_000)) { p.Kill(); return -1; }
        return p.ExitCode;
    }

    public void Dispose()
    {
        Run("ip", $"netns del {Client}");
        Run("ip", $"netns del {Server}");
    }
}
