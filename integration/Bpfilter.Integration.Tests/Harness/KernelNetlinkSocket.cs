using System.Runtime.InteropServices;

namespace Bpfilter.Integration.Tests.Harness;

/// <summary>
/// A NETLINK_NETFILTER socket to the kernel inside a test namespace: the oracle the fuzzed requests
/// are also sent to. The socket is created on a short-lived thread that joined the namespace
/// (setns only moves the calling thread); the socket stays bound to that namespace afterwards.
/// </summary>
public sealed unsafe partial class KernelNetlinkSocket : IDisposable
{
    const int AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, NETLINK_NETFILTER = 12;
    const int SOL_NETLINK = 270, NETLINK_EXT_ACK = 11, SOL_SOCKET = 1, SO_RCVBUF = 8;
    const int MSG_DONTWAIT = 0x40, EAGAIN = 11;
    [LibraryImport("libc", SetLastError = true)] private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] private static partial int setsockopt(int fd, int level, int name, int* value, int len);
    [LibraryImport("libc", SetLastError = true)] private static partial nint send(int fd, byte* buf, nint len, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial nint recv(int fd, byte* buf, nint len, int flags);
    [LibraryImport("libc")] private static partial int close(int fd);

    readonly int _fd;
    readonly byte[] _buf = new byte[1 << 20];

    public KernelNetlinkSocket(NetNs ns)
    {
        // A socket belongs to the namespace of the thread that creates it.
        _fd = ns.Run(() =>
        {
            var fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
            if (fd < 0) throw new IOException($"socket: errno {Marshal.GetLastPInvokeError()}");
            int one = 1, rcv = 4 << 20;
            setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(int));
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(int));
            return fd;
        });
    }

    /// <summary>Sends one datagram and collects every datagram the kernel queued in answer.</summary>
    public List<byte[]> Exchange(ReadOnlySpan<byte> request)
    {
        fixed (byte* p = request)
        {
            if (send(_fd, p, request.Length, 0) < 0)
                return [];  // e.g. EMSGSIZE; the kernel never saw it, so it answers nothing
        }
        var replies = new List<byte[]>();
        fixed (byte* b = _buf)
        {
            while (true)
            {
                nint n = recv(_fd, b, _buf.Length, MSG_DONTWAIT);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == EAGAIN) break;
                    throw new IOException($"recv from the kernel: errno {errno}");
                }
                replies.Add(_buf.AsSpan(0, (int)n).ToArray());
            }
        }
        return replies;
    }

    public void Dispose() => close(_fd);
}
