using System.Net.Sockets;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// The Unix socket bpfilterd listens on. One task per connection; every request of every
/// connection goes through one lock into the endpoint, because nf_tables is one state machine.
/// </summary>
public sealed class DaemonServer : IAsyncDisposable
{
    public const string DefaultSocketPath = "/run/bpfilter/bpfilterd.sock";
    public const UnixFileMode DefaultSocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    readonly INetlinkEndpoint _endpoint;
    readonly Action<string> _log;
    readonly ServerLimits _limits;
    /// <summary>
    /// Every request of every client enters the endpoint under this lock, one at a time, as every
    /// nfnetlink batch runs under the kernel's commit_mutex: a batch is never interleaved with another
    /// client's batch or dump, and each client sees the generations in commit order.
    /// </summary>
    readonly object _gate = new();
    readonly CancellationTokenSource _stop = new();
    readonly HashSet<Task> _connections = [];
    readonly EventSubscribers _subscribers = new();
    Socket? _listener;
    Task? _acceptLoop;

    /// <summary>The connections' multicast memberships (the trace relay publishes to them too).</summary>
    internal EventSubscribers Subscribers => _subscribers;

    public string SocketPath { get; }
    public UnixFileMode SocketMode { get; }

    public DaemonServer(INetlinkEndpoint endpoint, string socketPath = DefaultSocketPath,
        UnixFileMode socketMode = DefaultSocketMode, Action<string>? log = null, ServerLimits? limits = null)
    {
        _endpoint = endpoint;
        _limits = limits ?? ServerLimits.Default;
        SocketPath = Path.GetFullPath(socketPath);
        SocketMode = socketMode;
        _log = log ?? (_ => { });
    }

    /// <summary>Binds and starts accepting. Throws if the path is taken by a live daemon or a non-socket.</summary>
    public void Start()
    {
        if (_listener != null) throw new InvalidOperationException("server already started");
        _listener = UnixListener.Bind(SocketPath, SocketMode, 64, _log);
        _acceptLoop = AcceptLoopAsync(_stop.Token);
        _log($"listening on {SocketPath} (mode {Convert.ToString((int)SocketMode, 8)})");
    }

    async Task AcceptLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e)
            {
                _log($"accept failed: {e.Message}");
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false); // e.g. EMFILE: do not spin
                continue;
            }
            Track(Task.Run(() => ServeAsync(client, ct), CancellationToken.None));
        }
    }

    void Track(Task t)
    {
        lock (_connections) _connections.Add(t);
        t.ContinueWith(done => { lock (_connections) _connections.Remove(done); }, TaskScheduler.Default);
    }

    async Task ServeAsync(Socket client, CancellationToken ct)
    {
        try
        {
            var peer = PeerCredentials.Of(client);
            if (!peer.NetAdmin) _log($"peer pid {peer.Pid} uid {peer.Uid} lacks CAP_NET_ADMIN: answering EPERM");
            var ports = new HashSet<uint>();
            try
            {
                await new DaemonConnection(client, peer, (request, portId) =>
                {
                    ports.Add(portId);
                    return Dispatch(request, portId);
                }, _log, _limits, _subscribers).RunAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                // Owner tables (NFT_TABLE_F_OWNER) go away with the socket that created them.
                if (peer.NetAdmin)
                    foreach (var port in ports)
                        lock (_gate) _endpoint.Release(port);
            }
        }
        catch (Exception e)
        {
            _log($"connection failed: {e}");
            client.Dispose();
        }
    }

    IReadOnlyList<byte[]> Dispatch(ReadOnlyMemory<byte> request, uint portId)
    {
        lock (_gate)
        {
            // Events leave under the gate, so every subscriber sees the commits in order.
            var events = _subscribers.HasListeners ? new List<Nft.Engine.NetlinkEvent>() : null;
            var replies = _endpoint.Process(request.Span, portId, events);
            if (events is { Count: > 0 }) _subscribers.Publish(events);
            return replies;
        }
    }

    /// <summary>Stops accepting, closes every connection and removes the socket file.</summary>
    public async Task StopAsync()
    {
        if (_listener == null) return;
        _stop.Cancel();
        _listener.Dispose();
        if (_acceptLoop != null) await _acceptLoop.ConfigureAwait(false);
        Task[] pending;
        lock (_connections) pending = [.. _connections];
        await Task.WhenAll(pending).ConfigureAwait(false);
        try { File.Delete(SocketPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _listener = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}
