using Nft.Netlink;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// The socket server's bounds on what one client can make the daemon hold, each with the answer the
/// kernel gives past its own equivalent. Tests construct smaller ones; the daemon uses <see cref="Default"/>.
/// </summary>
public sealed record ServerLimits
{
    /// <summary>
    /// Largest request frame (one send of nft). The kernel refuses a netlink send above the socket's
    /// send buffer with EMSGSIZE; the interposer does so before sending (BFNFT_MAX_REQUEST), so a frame
    /// announcing more is not from it and the connection is closed unread.
    /// </summary>
    public const int MaxRequestBytes = DaemonFrame.MaxRequest;

    /// <summary>
    /// Reply bytes queued for a client that is not reading, as a netlink socket's receive buffer
    /// (sk_rcvbuf; nft raises its own to a few MiB for big dumps). A reply that does not fit while others
    /// are still queued is dropped and the client gets ENOBUFS instead, as netlink_unicast answers a full
    /// receiver; the request itself has taken effect, as in the kernel. A reply to a client with nothing
    /// queued always fits, so a large dump to a client that reads is never lost.
    /// </summary>
    public const int DefaultMaxQueuedReplyBytes = 16 << 20;

    /// <summary>
    /// Reply frames queued for a client that is not reading. Each request gets a frame even when its
    /// reply was dropped, so past this the daemon stops reading that client's requests until it reads:
    /// its sends block, as a sender's do when the peer's buffer stays full. Bounds the ENOBUFS frames too.
    /// </summary>
    public const int DefaultMaxQueuedReplies = 1024;

    public int MaxQueuedReplyBytes { get; init; } = DefaultMaxQueuedReplyBytes;
    public int MaxQueuedReplies { get; init; } = DefaultMaxQueuedReplies;

    public static readonly ServerLimits Default = new();
}
