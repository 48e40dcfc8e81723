using System.Net;
using System.Net.Sockets;

namespace Bpfilter.Daemon.Metrics;

/// <summary>
/// The opt-in metrics endpoint (--metrics): a loopback TCP port or a Unix socket answering GET /metrics
/// (<see cref="HttpExchange"/>). Each connection gets one response and is closed. A peer has
/// <see cref="DefaultRequestTimeout"/> to send its request head and read the answer, at most
/// <see cref="MaxConnections"/> are served at once (others are closed unanswered), and a head larger than
/// <see cref="HttpExchange.MaxHeadBytes"/> is refused with 431: no peer can hold the daemon's memory or threads.
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    public const int MaxConnections = 8;
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(5);

    readonly MetricsListen _listen;
    readonly Func<string> _scrape;
    readonly Action<string> _log;
    readonly TimeSpan _timeout;
    readonly CancellationTokenSource _stop = new();
    readonly HashSet<Task> _connections = [];
    Socket? _listener;
    Task? _loop;

    /// <param name="requestTimeout">how long a peer may take to send its request and read the answer (tests shorten it)</param>
    public MetricsServer(MetricsListen listen, Func<string> scrape, Action<string>? log = null, TimeSpan? requestTimeout = null)
    {
        _timeout = requestTimeout ?? DefaultRequestTimeout;
        _listen = listen;
        _scrape = scrape;
        _log = log ?? (_ => { });
    }

    /// <summary>Where it listens once started (the TCP address and port, or the Unix socket path).</summary>
    public EndPoint? LocalEndPoint => _listener?.LocalEndPoint;

    public void Start()
    {
        if (_listener != null) throw new InvalidOperationException("metrics server already started");
        _listener = _listen.Bind(_log);
        _loop = AcceptLoopAsync();
        _log($"metrics: serving {_listen}");
    }

    async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket peer;
            try
            {
                peer = await _listener!.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { break; }
            catch (SocketException e)
            {
                _log($"metrics: accept failed: {e.Message}");
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false); // e.g. EMFILE: do not spin
                continue;
            }
            lock (_connections)
            {
                if (_connections.Count >= MaxConnections)
                {
                    peer.Dispose();
                    continue;
                }
                var t = ServeAsync(peer);
                _connections.Add(t);
                _ = t.ContinueWith(done => { lock (_connections) _connections.Remove(done); }, TaskScheduler.Default);
            }
        }
    }

    async Task ServeAsync(Socket peer)
    {
        await Task.Yield(); // off the accept loop
        using (peer)
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
        {
            deadline.CancelAfter(_timeout);
            try
            {
                var buffer = new byte[HttpExchange.MaxHeadBytes];
                int filled = 0, head = -1;
                while (head < 0)
                {
                    if (filled == buffer.Length)
                    {
                        await SendAsync(peer, HttpExchange.Status(431, "Request Header Fields Too Large",
                            $"the request head exceeds {HttpExchange.MaxHeadBytes} bytes\n"), deadline.Token).ConfigureAwait(false);
                        return;
                    }
                    int n = await peer.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, deadline.Token).ConfigureAwait(false);
                    if (n == 0) return; // closed before a whole head
                    filled += n;
                    head = HttpExchange.HeadLength(buffer.AsSpan(0, filled));
                }
                // the scrape takes the engine's lock, which a commit may hold: not on an I/O thread
                var response = await Task.Run(() => HttpExchange.Respond(buffer.AsSpan(0, head), _scrape), deadline.Token).ConfigureAwait(false);
                await SendAsync(peer, response, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { } // too slow, or the daemon stops
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }
    }

    /// <summary>Bytes read and dropped after an answer, at most, before the connection is closed anyway.</summary>
    const int MaxDrainBytes = 64 * 1024;

    /// <summary>
    /// Sends the answer, ends the sending side, then reads and drops what the peer still sends (the rest of an
    /// oversized head, a body) until it closes, up to <see cref="MaxDrainBytes"/> or the deadline: closing with
    /// unread bytes would reset the connection and could destroy the answer before the peer read it.
    /// </summary>
    static async Task SendAsync(Socket peer, byte[] bytes, CancellationToken ct)
    {
        for (int sent = 0; sent < bytes.Length;)
            sent += await peer.SendAsync(bytes.AsMemory(sent), SocketFlags.None, ct).ConfigureAwait(false);
        peer.Shutdown(SocketShutdown.Send);
        var scratch = new byte[4096];
        for (int drained = 0, n; drained < MaxDrainBytes; drained += n)
            if ((n = await peer.ReceiveAsync(scratch, SocketFlags.None, ct).ConfigureAwait(false)) == 0) break;
    }

    public async ValueTask DisposeAsync()
    {
        if (_listener == null) return;
        _stop.Cancel();
        _listener.Dispose();
        if (_loop != null) await _loop.ConfigureAwait(false);
        Task[] pending;
        lock (_connections) pending = [.. _connections];
        await Task.WhenAll(pending).ConfigureAwait(false);
        if (_listen.UnixPath is { } path)
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _listener = null;
        _stop.Dispose();
    }
}
