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
    readonly ServerLimits _limits;
    readonly EventSubscribers? _subscribers;

    public DaemonConnection(Socket socket, PeerCredentials peer,
        Func<ReadOnlyMemory<byte>, uint, IReadOnlyList<byte[]>> dispatch, Action<string> log, ServerLimits? limits = null,
        EventSubscribers? subscribers = null)
    {
        _subscribers = subscribers;
        _limits = limits ?? ServerLimits.Default;
        _socket = socket;
        _peer = peer;
        _dispatch = dispatch;
        _log = log;
    }

    const int ReadSize = 64 * 1024;

    public async Task RunAsync(CancellationToken ct)
    {
        var stream = new NetworkStream(_socket, ownsSocket: true);
        // Reads of up to 64 KiB: nft sends a whole batch as one frame (tens of MiB for a set of a million
        // elements), which the default 4 KiB reads took in thousands of socket reads and thread-pool hops.
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: ReadSize, minimumReadSize: ReadSize / 4, leaveOpen: true));
        var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        var replies = new ReplyQueue(_limits);
        // Replies leave through their own task: a client that stops reading stalls only that task,
        // never the reading of its requests (which answer ENOBUFS once its queue is full) nor any other client.
        using var stopWriting = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var writing = WriteRepliesAsync(writer, replies, stopWriting.Token);
        bool overflowing = false;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                try
                {
                    while (true)
                    {
                        if (writing.IsCompleted) return; // the peer is gone or the writer failed
                        await replies.WaitForSpaceAsync(ct).ConfigureAwait(false);
                        if (!DaemonFrame.TryReadRequest(ref buffer, out uint portId, out byte[] payload))
                        {
                            replies.ReturnSpace();
                            break;
                        }
                        if (DaemonFrame.TryReadGroups(payload, out uint groups))
                        {
                            replies.Add([DaemonFrame.GroupsAnswer(Subscribe(replies, portId, groups))], payload, portId);
                            continue;
                        }
                        bool fitted = replies.Add(Serve(payload, portId), payload, portId);
                        if (!fitted && !overflowing)
                            _log($"{this}: not reading its replies ({replies.QueuedBytes} bytes queued): answering ENOBUFS");
                        overflowing = !fitted;
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }
                if (result.IsCompleted)
                {
                    if (!buffer.IsEmpty) _log($"{this}: connection closed inside a request frame");
                    break;
                }
            }
            replies.Complete();
            await writing.ConfigureAwait(false);
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
            _subscribers?.Remove(replies);
            await stopWriting.CancelAsync().ConfigureAwait(false);
            try { await writing.ConfigureAwait(false); } catch (Exception) { /* reported above or peer gone */ }
            await reader.CompleteAsync().ConfigureAwait(false);
            try { await writer.CompleteAsync().ConfigureAwait(false); } catch (Exception) { /* peer gone */ }
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Writes queued reply frames in order until the queue completes, the peer goes or the connection stops.</summary>
    static async Task WriteRepliesAsync(PipeWriter writer, ReplyQueue replies, CancellationToken ct)
    {
        try
        {
            while (await replies.TakeAsync(ct).ConfigureAwait(false) is { } frame)
            {
                DaemonFrame.WriteReply(writer, frame);
                var flushed = await writer.FlushAsync(ct).ConfigureAwait(false);
                replies.Written();
                if (flushed.IsCanceled || flushed.IsCompleted) return;
            }
        }
        finally
        {
            replies.WriterGone(); // a reader waiting for space must not wait for a writer that left
        }
    }

    /// <summary>
    /// NETLINK_ADD_MEMBERSHIP / bind nl_groups: netfilter groups need CAP_NET_ADMIN (netlink_bind refuses
    /// others with EPERM). NFNLGRP_NFTABLES carries commit events, NFNLGRP_NFTRACE the relayed trace events (<see cref="TraceRelay"/>).
    /// </summary>
    int Subscribe(ReplyQueue replies, uint portId, uint groups)
    {
        if (!_peer.NetAdmin) return Errno.EPERM;
        if (_subscribers == null) return Errno.EOPNOTSUPP;
        _subscribers.Set(replies, portId, groups);
        _log($"{this}: port {portId} event groups 0x{groups:x}");
        return 0;
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
