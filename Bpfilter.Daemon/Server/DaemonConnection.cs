using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using Nft.Netlink;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// One interposer connection: request frames in, exactly one reply frame out per request.
/// A malformed frame or a failing endpoint closes this connection only; nothing escapes.
/// </summary>
internal sealed class DaemonConnection
{
    readonly Socket _socket;
    readonly PeerCredentials _peer;
    readonly Func<ReadOnlyMemory<byte>, uint, IReadOnlyList<byte[]>> _dispatch;
    readonly Action<string> _log;

    public DaemonConnection(Socket socket, PeerCredentials peer,
        Func<ReadOnlyMemory<byte>, uint, IReadOnlyList<byte[]>> dispatch, Action<string> log)
    {
        _socket = socket;
        _peer = peer;
        _dispatch = dispatch;
        _log = log;
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var stream = new NetworkStream(_socket, ownsSocket: true);
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                bool wrote = false;
                try
                {
                    while (DaemonFrame.TryReadRequest(ref buffer, out uint portId, out byte[] payload))
                    {
                        DaemonFrame.WriteReply(writer, Serve(payload, portId));
                        wrote = true;
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }
                // The interposer waits for each reply before its next request: flush per batch read.
                if (wrote && (await writer.FlushAsync(ct).ConfigureAwait(false)).IsCanceled) break;
                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty) _log($"{this}: connection closed inside a request frame");
                    break;
                }
            }
        }
        catch (InvalidDataException e)
        {
            _log($"{this}: malformed frame, closing: {e.Message}");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (EndpointFailure e)
        {
            // The endpoint broke its contract (it must answer bad input with NLMSG_ERROR); the
            // client sees its connection reset rather than a reply that might be wrong.
            _log($"{this}: endpoint failure, closing connection: {e.InnerException}");
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The peer went away mid-reply; nothing to answer.
        }
        catch (Exception e)
        {
            _log($"{this}: unexpected failure, closing connection: {e}");
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            try { await writer.CompleteAsync().ConfigureAwait(false); } catch (Exception) { /* peer gone */ }
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    IReadOnlyList<byte[]> Serve(byte[] payload, uint portId)
    {
        if (!_peer.NetAdmin) return PermissionDenied.Reply(payload, portId);
        try
        {
            return _dispatch(payload, portId);
        }
        catch (Exception e)
        {
            throw new EndpointFailure(e);
        }
    }

    sealed class EndpointFailure(Exception inner) : Exception("endpoint failed", inner);

    public override string ToString() => $"peer pid {_peer.Pid} uid {_peer.Uid}";
}
