using System.Net.Sockets;
using System.Text;
using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon;

/// <summary>
/// The side channel `bpfilterd explain` reads: a Unix stream socket next to the daemon socket
/// (<c>PATH.explain</c>, same file mode). A peer holding CAP_NET_ADMIN gets the report and the
/// connection is closed; anyone else gets one line saying why not. Nothing is read from the peer.
/// </summary>
public sealed class ExplainServer : IAsyncDisposable
{
    public const string Suffix = ".explain";

    readonly Func<string> _report;
    readonly Socket _listener;
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;

    public string SocketPath { get; }

    public ExplainServer(string daemonSocket, UnixFileMode mode, Func<string> report)
    {
        _report = report;
        SocketPath = Path.GetFullPath(daemonSocket) + Suffix;
        if (File.Exists(SocketPath)) File.Delete(SocketPath);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        File.SetUnixFileMode(SocketPath, mode);
        _listener.Listen(8);
        _loop = Task.Run(LoopAsync);
    }

    async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket peer;
            try { peer = await _listener.AcceptAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            using (peer)
            {
                try
                {
                    var text = PeerCredentials.Of(peer).NetAdmin ? _report() : "bpfilterd: Operation not permitted (you must be root)\n";
                    await peer.SendAsync(Encoding.UTF8.GetBytes(text), SocketFlags.None);
                    peer.Shutdown(SocketShutdown.Both);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
                catch (Exception e)
                {
                    try { await peer.SendAsync(Encoding.UTF8.GetBytes($"bpfilterd: explain failed: {e.Message}\n"), SocketFlags.None); } catch (SocketException) { }
                }
            }
        }
    }

    /// <summary>`bpfilterd explain [--socket PATH]`: prints the report; exit status 1 when the daemon cannot be reached.</summary>
    public static int Client(string daemonSocket)
    {
        var path = Path.GetFullPath(daemonSocket) + Suffix;
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            using var stream = new NetworkStream(s, ownsSocket: false);
            using var stdout = Console.OpenStandardOutput();
            stream.CopyTo(stdout);
            return 0;
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"bpfilterd explain: cannot reach {path}: {e.Message}");
            return 1;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        try { await _loop; } catch (Exception) { }
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}
