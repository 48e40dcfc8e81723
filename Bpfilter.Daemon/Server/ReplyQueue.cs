using Nft.Netlink;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// The replies of one connection waiting for the client to read them: the reader adds, the writer
/// drains. Bounded in bytes (past it a reply becomes ENOBUFS) and in frames (past it the reader waits),
/// so a client that stops reading costs the daemon at most <see cref="ServerLimits"/> and blocks nobody else.
/// </summary>
internal sealed class ReplyQueue(ServerLimits limits)
{
    readonly Queue<(IReadOnlyList<byte[]> Datagrams, long Bytes, bool IsEvent)> _frames = new();
    readonly SemaphoreSlim _ready = new(0);
    readonly SemaphoreSlim _space = new(limits.MaxQueuedReplies);
    long _bytes;
    bool _complete;
    int _events;
    bool _overrunQueued;

    public long QueuedBytes { get { lock (_frames) return _bytes; } }

    /// <summary>Waits until one more frame may be queued (or the writer is gone).</summary>
    public Task WaitForSpaceAsync(CancellationToken ct) => _space.WaitAsync(ct);

    /// <summary>Gives back the space taken by <see cref="WaitForSpaceAsync"/> when no request followed.</summary>
    public void ReturnSpace() => _space.Release();

    /// <summary>No more frames: the writer ends once it has written those queued.</summary>
    public void Complete()
    {
        lock (_frames) _complete = true;
        _ready.Release();
    }

    /// <summary>The writer stopped: wake a reader waiting for space so it can see that and stop too.</summary>
    public void WriterGone() => _space.Release(limits.MaxQueuedReplies);

    /// <summary>
    /// Queues the reply to <paramref name="request"/> (after <see cref="WaitForSpaceAsync"/>); returns false
    /// when it did not fit and ENOBUFS was queued in its place.
    /// </summary>
    public bool Add(IReadOnlyList<byte[]> datagrams, ReadOnlySpan<byte> request, uint portId)
    {
        long size = 0;
        foreach (var d in datagrams) size += d.Length;
        bool fits;
        lock (_frames)
        {
            fits = _bytes == 0 || _bytes + size <= limits.MaxQueuedReplyBytes;
            if (!fits)
            {
                datagrams = NoBufferSpace(request, portId);
                size = 0; // the error stands in for a lost reply: it is not counted against the buffer
                foreach (var d in datagrams) size += d.Length;
            }
            _frames.Enqueue((datagrams, size, false));
            _bytes += size;
        }
        _ready.Release();
        return fits;
    }

    /// <summary>
    /// Queues one multicast datagram list for a subscriber. It never waits: past the byte or frame bound the
    /// event is dropped and an empty frame (lost events: ENOBUFS at the subscriber) is queued once until
    /// written, as netlink_broadcast drops for a full receiver and sets its sk_err. Returns false when dropped.
    /// </summary>
    public bool AddEvent(IReadOnlyList<byte[]> datagrams)
    {
        long size = 0;
        foreach (var d in datagrams) size += d.Length;
        lock (_frames)
        {
            if (_complete) return false;
            bool fits = _events < limits.MaxQueuedReplies && (_bytes == 0 || _bytes + size <= limits.MaxQueuedReplyBytes);
            if (!fits)
            {
                if (_overrunQueued) return false;
                _overrunQueued = true;
                datagrams = [];
                size = 0;
            }
            _frames.Enqueue((datagrams, size, true));
            _bytes += size;
            _events++;
            if (!fits)
            {
                _ready.Release();
                return false;
            }
        }
        _ready.Release();
        return true;
    }

    /// <summary>The next frame to write, null once completed and drained; it stays counted until <see cref="Written"/>.</summary>
    public async Task<IReadOnlyList<byte[]>?> TakeAsync(CancellationToken ct)
    {
        await _ready.WaitAsync(ct).ConfigureAwait(false);
        lock (_frames)
        {
            if (_frames.Count > 0) return _frames.Peek().Datagrams;
            return _complete ? null : throw new InvalidOperationException("reply queue signalled without a frame");
        }
    }

    /// <summary>The frame returned by <see cref="TakeAsync"/> reached the socket.</summary>
    public void Written()
    {
        bool reply;
        lock (_frames)
        {
            var f = _frames.Dequeue();
            _bytes -= f.Bytes;
            reply = !f.IsEvent;
            if (f.IsEvent)
            {
                _events--;
                if (f.Datagrams.Count == 0) _overrunQueued = false;
            }
        }
        if (reply) _space.Release(); // events never took reader space
    }

    /// <summary>NLMSG_ERROR ENOBUFS for the first message of the request, as a full netlink receiver reports the loss.</summary>
    static IReadOnlyList<byte[]> NoBufferSpace(ReadOnlySpan<byte> request, uint portId)
    {
        if (request.Length < NlMsgHeader.Size) return [];
        var h = NlMsgHeader.Read(request);
        if (h.Length < NlMsgHeader.Size || h.Length > request.Length) return [];
        var w = new NetlinkWriter(64);
        // Only the header is echoed (as with NETLINK_CAP_ACK): the error must stay small.
        NetlinkAck.Write(w, request[..NlMsgHeader.Size], h, Errno.ENOBUFS, portId);
        return [w.ToArray()];
    }
}
