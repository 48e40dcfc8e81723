using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// Test endpoint that forwards every request to the kernel's own nf_tables in a given network
/// namespace and returns exactly the datagrams the kernel queues. With it, nft through the
/// interposer and the daemon's socket server must behave exactly like nft on the kernel, which
/// tests the transport independently of the nf_tables emulation.
/// </summary>
internal sealed unsafe partial class KernelRelayEndpoint : INetlinkEndpoint, IDisposable
{
    const int AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000, NETLINK_NETFILTER = 12;
    const int SOL_NETLINK = 270, NETLINK_EXT_ACK = 11, MSG_DONTWAIT = 0x40;
    const int SOL_SOCKET = 1, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33;
    const int EAGAIN = 11, EINTR = 4;

    readonly int _fd;
    readonly uint _kernelPortId;
    readonly byte[] _buffer = new byte[1 << 20];
    public int Calls;

    [LibraryImport("libc", SetLastError = true)] private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] private static partial int setsockopt(int fd, int level, int name, int* value, uint len);
    [LibraryImport("libc", SetLastError = true)] private static partial int getsockname(int fd, byte* addr, uint* len);
    [LibraryImport("libc", SetLastError = true)] private static partial nint sendto(int fd, byte* buf, nuint len, int flags, byte* addr, uint alen);
    [LibraryImport("libc", SetLastError = true)] private static partial nint recv(int fd, byte* buf, nuint len, int flags);
    [LibraryImport("libc", SetLastError = true)] private static partial int close(int fd);

    public KernelRelayEndpoint(NetNs ns)
    {
        // A socket belongs to the namespace of the thread that creates it.
        _fd = ns.Run(() =>
        {
            var fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
            if (fd < 0) throw new IOException($"netlink socket in {ns.Name}: errno {Marshal.GetLastPInvokeError()}");
            return fd;
        });
        int one = 1, big = 64 << 20;
        setsockopt(_fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, 4);
        // As nft does for large batches: the kernel refuses a send larger than the send buffer.
        setsockopt(_fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, 4);
        setsockopt(_fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, 4);
        // Send an empty message to autobind, then learn the port id the kernel gave us.
        byte* addr = stackalloc byte[12];
        uint alen = 12;
        var probe = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(probe, 16);
        BinaryPrimitives.WriteUInt16LittleEndian(probe.AsSpan(4), 1); // NLMSG_NOOP
        SendToKernel(probe);
        Drain(null);
        getsockname(_fd, addr, &alen);
        _kernelPortId = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(addr + 4, 4));
    }

    public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId)
    {
        Interlocked.Increment(ref Calls);
        SendToKernel(request);
        var replies = new List<byte[]>();
        Drain(replies);
        // Replies name the relay's kernel port; the requester expects its own.
        foreach (var d in replies) RewritePortId(d, portId);
        return replies;
    }

    void SendToKernel(ReadOnlySpan<byte> request)
    {
        byte* kernel = stackalloc byte[12];
        new Span<byte>(kernel, 12).Clear();
        kernel[0] = AF_NETLINK;
        fixed (byte* p = request)
            if (sendto(_fd, p, (nuint)request.Length, 0, kernel, 12) < 0)
                throw new IOException($"sendto kernel: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Reads until the kernel has nothing more; each recv also advances a running dump.</summary>
    void Drain(List<byte[]>? into)
    {
        fixed (byte* b = _buffer)
            while (true)
            {
                nint n = recv(_fd, b, (nuint)_buffer.Length, MSG_DONTWAIT);
                if (n < 0)
                {
                    int e = Marshal.GetLastPInvokeError();
                    if (e == EINTR) continue;
                    if (e == EAGAIN) return;
                    throw new IOException($"recv from kernel: errno {e}");
                }
                into?.Add(_buffer.AsSpan(0, (int)n).ToArray());
            }
    }

    void RewritePortId(byte[] d, uint portId)
    {
        for (int pos = 0; pos + 16 <= d.Length;)
        {
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(pos));
            if (len < 16 || len > d.Length - pos) break;
            if (BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(pos + 12)) == _kernelPortId)
                BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(pos + 12), portId);
            pos += (int)((len + 3) & ~3u);
        }
    }

    public void Dispose() => close(_fd);
}
