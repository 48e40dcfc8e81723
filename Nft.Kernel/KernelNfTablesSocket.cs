using System.Buffers.Binary;
using System.Runtime.ExceptionServices;
using Nft.Bytecode;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Kernel;

/// <summary>
/// A real <c>socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)</c> to the kernel's nf_tables in the
/// network namespace it was opened in: batches (every message acknowledged, errors mapped back to
/// their message), single requests and dumps of any size. One operation at a time (locked).
/// </summary>
public sealed unsafe class KernelNfTablesSocket : IDisposable
{
    /// <summary>Socket buffers, forced past the sysctl limits (root): a batch is one sendmsg and every ACK must fit.</summary>
    public const int BufferSize = 32 << 20;
    /// <summary>Receive buffer: larger than any dump chunk the kernel builds.</summary>
    public const int ReceiveChunk = 1 << 20;
    /// <summary>How often an interrupted dump (NLM_F_DUMP_INTR: the ruleset changed meanwhile) is restarted.</summary>
    public const int DumpRetries = 8;
    /// <summary>A reply the kernel owes us that has not come after this long is an error, not a hang.</summary>
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);

    readonly object _lock = new();
    readonly byte[] _rx = new byte[ReceiveChunk];
    int _fd;
    uint _seq;

    KernelNfTablesSocket(int fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
        _seq = (uint)Environment.TickCount;
    }

    /// <summary>The netlink port id the kernel gave this socket.</summary>
    public uint PortId { get; }

    /// <summary>Opens the socket in the calling thread's network namespace.</summary>
    public static KernelNfTablesSocket Open()
    {
        int fd = NetlinkNative.socket(NetlinkNative.AF_NETLINK, NetlinkNative.SOCK_RAW | NetlinkNative.SOCK_CLOEXEC, Nfnl.NetlinkNetfilter);
        if (fd < 0) throw NetlinkNative.Io("socket(AF_NETLINK, NETLINK_NETFILTER)");
        try
        {
            NetlinkNative.SetInt(fd, NetlinkNative.SOL_SOCKET, NetlinkNative.SO_SNDBUFFORCE, BufferSize);
            NetlinkNative.SetInt(fd, NetlinkNative.SOL_SOCKET, NetlinkNative.SO_RCVBUFFORCE, BufferSize);
            NetlinkNative.SetInt(fd, NetlinkNative.SOL_NETLINK, NetlinkNative.NETLINK_EXT_ACK, 1);
            // errors carry only the offending header, not the whole message: offsets still refer to our copy
            NetlinkNative.SetInt(fd, NetlinkNative.SOL_NETLINK, NetlinkNative.NETLINK_CAP_ACK, 1);
            var tv = new NetlinkNative.Timeval { Sec = (long)ReplyTimeout.TotalSeconds };
            if (NetlinkNative.setsockopt(fd, NetlinkNative.SOL_SOCKET, NetlinkNative.SO_RCVTIMEO, &tv, sizeof(NetlinkNative.Timeval)) != 0)
                throw NetlinkNative.Io("setsockopt(SO_RCVTIMEO)");
            var sa = new NetlinkNative.SockaddrNl { Family = NetlinkNative.AF_NETLINK };
            if (NetlinkNative.bind(fd, &sa, sizeof(NetlinkNative.SockaddrNl)) != 0) throw NetlinkNative.Io("bind(AF_NETLINK)");
            int len = sizeof(NetlinkNative.SockaddrNl);
            if (NetlinkNative.getsockname(fd, &sa, &len) != 0) throw NetlinkNative.Io("getsockname(AF_NETLINK)");
            return new KernelNfTablesSocket(fd, sa.Pid);
        }
        catch
        {
            NetlinkNative.close(fd);
            throw;
        }
    }

    /// <summary>
    /// Opens the socket in the network namespace mounted at <paramref name="netnsPath"/> (e.g.
    /// /run/netns/NAME): a short-lived thread enters it and creates the socket, which keeps that
    /// namespace for its whole life, whichever thread uses it afterwards.
    /// </summary>
    public static KernelNfTablesSocket OpenInNamespace(string netnsPath) => Netns.Run(netnsPath, Open);



    public void Dispose()
    {
        lock (_lock)
        {
            if (_fd >= 0) NetlinkNative.close(_fd);
            _fd = -1;
        }
    }

    int Fd => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(KernelNfTablesSocket));

    uint NextSeqs(int count)
    {
        uint first = _seq;
        _seq += (uint)count;
        return first;
    }

    void Send(ReadOnlySpan<byte> bytes)
    {
        var sa = new NetlinkNative.SockaddrNl { Family = NetlinkNative.AF_NETLINK };
        fixed (byte* p = bytes)
        {
            while (true)
            {
                nint n = NetlinkNative.sendto(Fd, p, (nuint)bytes.Length, 0, &sa, sizeof(NetlinkNative.SockaddrNl));
                if (n == bytes.Length) return;
                if (n < 0 && NetlinkNative.LastErrno == NetlinkNative.EINTR) continue;
                if (n < 0) throw NetlinkNative.Io($"sendto(NETLINK_NETFILTER, {bytes.Length} bytes)");
                throw new IOException($"sendto(NETLINK_NETFILTER): short send {n} of {bytes.Length}");
            }
        }
    }

    /// <summary>One datagram; 0 when <paramref name="dontWait"/> and nothing is queued.</summary>
    int Receive(bool dontWait)
    {
        fixed (byte* p = _rx)
        {
            while (true)
            {
                nint n = NetlinkNative.recv(Fd, p, (nuint)_rx.Length, (dontWait ? NetlinkNative.MSG_DONTWAIT : 0) | NetlinkNative.MSG_TRUNC);
                if (n >= 0)
                {
                    if (n > _rx.Length) throw new IOException($"netlink datagram of {n} bytes exceeds the {_rx.Length}-byte buffer");
                    return (int)n;
                }
                int e = NetlinkNative.LastErrno;
                if (e == NetlinkNative.EINTR) continue;
                if (e == NetlinkNative.EAGAIN && dontWait) return 0;
                if (e == NetlinkNative.EAGAIN) throw new TimeoutException($"no reply from nf_tables within {ReplyTimeout}");
                throw NetlinkNative.Io(e == NetlinkNative.ENOBUFS ? "recv(NETLINK_NETFILTER): replies were lost (receive buffer overrun)" : "recv(NETLINK_NETFILTER)");
            }
        }
    }

    /// <summary>
    /// Sends a batch. With <paramref name="commit"/> false the batch goes without NFNL_MSG_BATCH_END:
    /// nfnetlink then checks every message and the whole transaction (loops, jump depth) exactly as
    /// for a commit and aborts it, as <c>nft -c</c> does. <paramref name="generation"/> (NFNL_BATCH_GENID)
    /// makes the kernel refuse the batch with ERESTART if the ruleset changed since it was read.
    /// <paramref name="deleted"/>, when given, gets the rules and objects the committed batch deleted, each as the kernel's
    /// DELRULE/DELOBJ notification has it (a rule's counters and quota consumption at the commit; an object without its state): the batch's deletions go with
    /// NLM_F_ECHO. A notification that does not decode is left out (its rule's or object's count is not final then).
    /// </summary>
    public KernelBatchResult SendBatch(KernelBatch batch, bool commit, uint? generation = null, WireFormat format = WireFormat.AsDecoded,
        ICollection<object>? deleted = null)
    {
        lock (_lock)
        {
            uint first = NextSeqs(batch.Count + 2);
            var w = new NetlinkWriter(Math.Max(4096, batch.Count * 256));
            batch.Write(w, first, PortId, commit, generation, format, echoDeletes: deleted != null);
            Send(w.WrittenSpan);
            // nfnetlink handles the whole batch inside sendmsg: every reply is queued when it returns
            int acked = 0;
            var errors = new List<KernelMessageError>();
            var seen = new HashSet<uint>();
            int n;
            while ((n = Receive(dontWait: true)) > 0)
            {
                var r = new NetlinkMessageReader(_rx.AsSpan(0, n));
                while (r.TryRead(out var m))
                {
                    if (m.Header.Type != NlMsgType.Error)
                    {
                        if (deleted != null && m.IsNfTables && KernelBatch.IsEchoedDelete((NftMsgType)Nfnl.Msg(m.Header.Type)))
                            try { deleted.Add(NftMessage.Decode(m)); }
                            catch (NetlinkException) { } // left out: the caller falls back to the count it read before
                        continue;
                    }
                    var err = ParseError(m);
                    uint seq = err.RequestSeq;
                    int index = seq > first && seq <= first + (uint)batch.Count ? (int)(seq - first - 1) : -1;
                    if (index >= 0) seen.Add(seq);
                    if (err.Errno == 0) { acked++; continue; }
                    var m2 = index >= 0 ? batch.Messages[index] : null;
                    errors.Add(new KernelMessageError(index, m2?.Description, err.Errno, err.ExtAck, err.Offset, m2?.RuleHandle, m2));
                }
                if (r.Malformed) throw new IOException("malformed netlink reply from the kernel");
            }
            if (errors.Count == 0 && seen.Count != batch.Count)
                throw new IOException($"nf_tables answered {seen.Count} of {batch.Count} batch messages");
            return new KernelBatchResult(acked, errors);
        }
    }

    readonly record struct ErrorReply(int Errno, uint RequestSeq, string? ExtAck, int Offset);

    static ErrorReply ParseError(NetlinkMessage m)
    {
        var body = m.Body;
        if (body.Length < 4 + NlMsgHeader.Size) throw new IOException("truncated NLMSG_ERROR from the kernel");
        int errno = -BinaryPrimitives.ReadInt32LittleEndian(body);
        var orig = NlMsgHeader.Read(body[4..]);
        string? ext = null;
        int offset = -1;
        if (m.Header.Has(NlmFlags.AckTlvs))
        {
            int tlvStart = 4 + (m.Header.Has(NlmFlags.Capped) ? NlMsgHeader.Size : NetlinkLimits.Align((int)orig.Length));
            if (tlvStart <= body.Length)
            {
                var ar = new AttributeReader(body[tlvStart..], 0);
                while (ar.TryRead(out var a))
                {
                    if (a.Type == NlmsgErrAttr.Msg) ext = a.String(4096);
                    else if (a.Type == NlmsgErrAttr.Offs && a.Length == 4) offset = (int)a.U32();
                }
            }
        }
        return new ErrorReply(errno, orig.Seq, ext, offset);
    }

    /// <summary>
    /// A single nf_tables request outside a batch (GETGEN, a GET of one object) with NLM_F_ACK:
    /// returns the decoded replies; a kernel error becomes <see cref="KernelNfTablesException"/>.
    /// </summary>
    public IReadOnlyList<object> Request(NftMsgType type, byte family, object record, NlmFlags flags = NlmFlags.None)
    {
        lock (_lock)
        {
            uint seq = NextSeqs(1);
            var w = new NetlinkWriter();
            NftMessage.Write(w, type, NlmFlags.Request | NlmFlags.Ack | flags, seq, PortId, family, 0, record, WireFormat.Kernel);
            Send(w.WrittenSpan);
            var replies = new List<object>();
            while (true)
            {
                int n = Receive(dontWait: false);
                var r = new NetlinkMessageReader(_rx.AsSpan(0, n));
                while (r.TryRead(out var m))
                {
                    if (m.Header.Seq != seq) continue; // a late reply to an earlier request
                    if (m.Header.Type == NlMsgType.Error)
                    {
                        var err = ParseError(m);
                        if (err.Errno != 0)
                            throw new KernelNfTablesException($"{type}", [new KernelMessageError(0, type.ToString(), err.Errno, err.ExtAck, err.Offset)]);
                        return replies;
                    }
                    if (m.IsNfTables) replies.Add(NftMessage.Decode(m));
                }
            }
        }
    }

    /// <summary>The ruleset generation (GETGEN).</summary>
    public uint GetGeneration()
    {
        foreach (var r in Request(NftMsgType.GetGen, 0, new Nft.Bytecode.Objects.Gen()))
            if (r is Nft.Bytecode.Objects.Gen g && g.Id is { } id) return id;
        throw new IOException("GETGEN: no NEWGEN reply from the kernel");
    }

    /// <summary>
    /// A dump (NLM_F_DUMP), read to NLMSG_DONE whatever its size; restarted when the kernel flags it
    /// interrupted (the ruleset changed during the dump). <paramref name="filter"/> is the request's
    /// record (e.g. a Rule with only Table set dumps that table's rules), family 0 means all families.
    /// </summary>
    public IReadOnlyList<T> Dump<T>(NftMsgType type, byte family, object filter) where T : class
    {
        for (int attempt = 0; ; attempt++)
        {
            var (items, interrupted) = DumpOnce<T>(type, family, filter);
            if (!interrupted) return items;
            if (attempt == DumpRetries) throw new IOException($"{type} dump interrupted {DumpRetries + 1} times");
        }
    }

    (List<T>, bool) DumpOnce<T>(NftMsgType type, byte family, object filter) where T : class
    {
        lock (_lock)
        {
            uint seq = NextSeqs(1);
            var w = new NetlinkWriter();
            NftMessage.Write(w, type, NlmFlags.Request | NlmFlags.Dump, seq, PortId, family, 0, filter, WireFormat.Kernel);
            Send(w.WrittenSpan);
            var items = new List<T>();
            bool interrupted = false;
            while (true)
            {
                int n = Receive(dontWait: false);
                var r = new NetlinkMessageReader(_rx.AsSpan(0, n));
                while (r.TryRead(out var m))
                {
                    if (m.Header.Seq != seq) continue;
                    if (m.Header.Has(NlmFlags.DumpIntr)) interrupted = true;
                    if (m.Header.Type == NlMsgType.Done)
                    {
                        int status = m.Body.Length >= 4 ? -BinaryPrimitives.ReadInt32LittleEndian(m.Body) : 0;
                        if (status != 0)
                            throw new KernelNfTablesException($"{type} dump", [new KernelMessageError(0, type.ToString(), status, null, -1)]);
                        return (items, interrupted);
                    }
                    if (m.Header.Type == NlMsgType.Error)
                    {
                        var err = ParseError(m);
                        if (err.Errno == 0) continue;
                        throw new KernelNfTablesException($"{type} dump", [new KernelMessageError(0, type.ToString(), err.Errno, err.ExtAck, err.Offset)]);
                    }
                    if (m.IsNfTables && NftMessage.Decode(m) is T item) items.Add(item);
                }
                if (r.Malformed) throw new IOException("malformed netlink reply from the kernel");
            }
        }
    }
}

/// <summary>Runs code in another network namespace on a dedicated thread (setns moves only the calling thread).</summary>
public static class Netns
{
    public static T Run<T>(string netnsPath, Func<T> body)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var t = new Thread(() =>
        {
            try
            {
                using (var h = File.OpenHandle(netnsPath, FileMode.Open, FileAccess.Read))
                    if (NetlinkNative.setns((int)h.DangerousGetHandle(), NetlinkNative.CLONE_NEWNET) != 0)
                        throw new IOException($"setns {netnsPath}: {NetlinkNative.Describe(NetlinkNative.LastErrno)}");
                result = body();
            }
            catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
        }) { IsBackground = true, Name = "netns" };
        t.Start();
        t.Join();
        error?.Throw();
        return result;
    }
}
