namespace Nft.Kernel;

/// <summary>
/// A NETLINK_NETFILTER socket that can be a member of NFNLGRP_NFTRACE: the kernel multicasts one
/// NFT_MSG_TRACE per traced step (packet, rule, return, policy) of a packet marked with
/// <c>meta nftrace set 1</c>, in the namespace the socket was opened in. The kernel builds trace
/// messages only while the group has a member (nfnetlink_has_listeners), so membership follows
/// demand (<see cref="Join"/>). One reader thread; <see cref="Join"/> may be called from any thread.
/// </summary>
public sealed unsafe class KernelTraceSocket : IDisposable
{
    /// <summary>The nfnetlink multicast group of nf_tables traces (NFNLGRP_NFTRACE).</summary>
    public const int Group = 9;
    /// <summary>Receive buffer, forced (root): room for a burst of traced packets while the reader catches up.</summary>
    public const int BufferSize = 8 << 20;
    const int NETLINK_ADD_MEMBERSHIP = 1, NETLINK_DROP_MEMBERSHIP = 2;
    /// <summary>How long one receive waits before the reader looks whether it should stop.</summary>
    static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    readonly byte[] _rx = new byte[KernelNfTablesSocket.ReceiveChunk];
    volatile int _fd;

    KernelTraceSocket(int fd) => _fd = fd;

    /// <summary>Opens the socket (a member of no group yet) in the calling thread's network namespace.</summary>
    public static KernelTraceSocket Open()
    {
        int fd = NetlinkNative.socket(NetlinkNative.AF_NETLINK, NetlinkNative.SOCK_RAW | NetlinkNative.SOCK_CLOEXEC, Nft.Netlink.Nfnl.NetlinkNetfilter);
        if (fd < 0) throw NetlinkNative.Io("socket(AF_NETLINK, NETLINK_NETFILTER)");
        try
        {
            NetlinkNative.SetInt(fd, NetlinkNative.SOL_SOCKET, NetlinkNative.SO_RCVBUFFORCE, BufferSize);
            var tv = new NetlinkNative.Timeval { Usec = (long)Poll.TotalMicroseconds };
            if (NetlinkNative.setsockopt(fd, NetlinkNative.SOL_SOCKET, NetlinkNative.SO_RCVTIMEO, &tv, sizeof(NetlinkNative.Timeval)) != 0)
                throw NetlinkNative.Io("setsockopt(SO_RCVTIMEO)");
            var sa = new NetlinkNative.SockaddrNl { Family = NetlinkNative.AF_NETLINK };
            if (NetlinkNative.bind(fd, &sa, sizeof(NetlinkNative.SockaddrNl)) != 0) throw NetlinkNative.Io("bind(AF_NETLINK)");
            return new KernelTraceSocket(fd);
        }
        catch
        {
            NetlinkNative.close(fd);
            throw;
        }
    }

    /// <summary>Joins (or leaves) NFNLGRP_NFTRACE.</summary>
    public void Join(bool member)
    {
        int fd = _fd;
        if (fd < 0) return;
        NetlinkNative.SetInt(fd, NetlinkNative.SOL_NETLINK, member ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, Group);
    }

    /// <summary>
    /// Reads datagrams until <paramref name="stop"/> is cancelled or the socket is disposed, handing each
    /// to <paramref name="datagram"/>. When the kernel dropped traces because the receive buffer was full
    /// (ENOBUFS), <paramref name="lost"/> is called and reading goes on.
    /// </summary>
    public void Run(ReadOnlySpanAction datagram, Action lost, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            int fd = _fd;
            if (fd < 0) return;
            nint n;
            fixed (byte* p = _rx) n = NetlinkNative.recv(fd, p, (nuint)_rx.Length, NetlinkNative.MSG_TRUNC);
            if (n >= 0)
            {
                // a datagram larger than the buffer was cut: never hand out half a message
                if (n <= _rx.Length) datagram(_rx.AsSpan(0, (int)n));
                else lost();
                continue;
            }
            int e = NetlinkNative.LastErrno;
            if (e == NetlinkNative.EINTR || e == NetlinkNative.EAGAIN) continue;
            if (e == NetlinkNative.ENOBUFS) { lost(); continue; }
            if (_fd < 0) return; // closed under us
            throw NetlinkNative.Io("recv(NFNLGRP_NFTRACE)");
        }
    }

    /// <summary>A callback over a received datagram (valid only during the call).</summary>
    public delegate void ReadOnlySpanAction(ReadOnlySpan<byte> bytes);



    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) NetlinkNative.close(fd);
    }
}
