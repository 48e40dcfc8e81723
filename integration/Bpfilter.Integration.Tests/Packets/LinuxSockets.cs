using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// The few libc calls the packet tests need: raw AF_PACKET and IP sockets, poll. .NET's
/// Socket has no AF_PACKET sockaddr, so these are plain file descriptors.
/// </summary>
internal static unsafe partial class LinuxSockets
{
    public const int AF_INET = 2, AF_INET6 = 10, AF_PACKET = 17;
    public const int SOCK_RAW = 3;
    public const int IPPROTO_ICMP = 1, IPPROTO_TCP = 6, IPPROTO_UDP = 17, IPPROTO_ICMPV6 = 58, IPPROTO_RAW = 255;
    public const int IPPROTO_IPV6 = 41, IPV6_HDRINCL = 36;
    public const int SOL_SOCKET = 1, SO_RCVBUF = 8;
    public const int SOL_PACKET = 263, PACKET_IGNORE_OUTGOING = 23;
    public const int ETH_P_ALL = 0x0003;
    public const int MSG_DONTWAIT = 0x40;
    const short POLLIN = 1;
    const int EINTR = 4, EAGAIN = 11;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, byte* addr, int len);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendto(int fd, byte* buf, nuint len, int flags, byte* addr, int addrlen);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recv(int fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setsockopt(int fd, int level, int name, byte* value, int len);


    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial uint if_nametoindex(string name);

    [StructLayout(LayoutKind.Sequential)]
    struct PollFd { public int Fd; public short Events; public short Revents; }

    static Exception Error(string what) =>
        new IOException($"{what}: errno {Marshal.GetLastPInvokeError()} ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");

    public static int Socket(int domain, int type, int protocol)
    {
        var fd = socket(domain, type, protocol);
        if (fd < 0) throw Error($"socket({domain}, {type}, {protocol})");
        return fd;
    }

    public static void SetInt(int fd, int level, int name, int value)
    {
        if (setsockopt(fd, level, name, (byte*)&value, sizeof(int)) != 0) throw Error($"setsockopt({level}, {name})");
    }

    public static int IfIndex(string name)
    {
        var i = if_nametoindex(name);
        if (i == 0) throw Error($"if_nametoindex({name})");
        return (int)i;
    }

    /// <summary>sockaddr_ll for ETH_P_ALL on one interface (bind and sendto).</summary>
    static byte[] LinkAddress(int ifIndex)
    {
        var sa = new byte[20];
        BinaryPrimitives.WriteUInt16LittleEndian(sa, AF_PACKET);
        BinaryPrimitives.WriteUInt16BigEndian(sa.AsSpan(2), ETH_P_ALL);
        BinaryPrimitives.WriteInt32LittleEndian(sa.AsSpan(4), ifIndex);
        return sa;
    }

    public static void BindLink(int fd, int ifIndex)
    {
        var sa = LinkAddress(ifIndex);
        fixed (byte* p = sa)
            if (bind(fd, p, sa.Length) != 0) throw Error("bind(AF_PACKET)");
    }

    public static void SendLink(int fd, int ifIndex, ReadOnlySpan<byte> frame)
    {
        var sa = LinkAddress(ifIndex);
        fixed (byte* p = sa)
        fixed (byte* b = frame)
            if (sendto(fd, b, (nuint)frame.Length, 0, p, sa.Length) != frame.Length) throw Error("sendto(AF_PACKET)");
    }

    public const int EPERM = 1;

    /// <summary>
    /// Sends a whole IP packet on a raw IP socket (header included) to its destination. Returns 0,
    /// or the errno of a refused send that is an outcome rather than a failure (EPERM: a netfilter
    /// hook on the output path dropped the packet).
    /// </summary>
    public static int SendIp(int fd, ReadOnlySpan<byte> packet, System.Net.IPAddress destination)
    {
        byte[] sa;
        if (destination.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            sa = new byte[16];
            BinaryPrimitives.WriteUInt16LittleEndian(sa, AF_INET);
            destination.GetAddressBytes().CopyTo(sa, 4);
        }
        else
        {
            sa = new byte[28];
            BinaryPrimitives.WriteUInt16LittleEndian(sa, AF_INET6);
            destination.GetAddressBytes().CopyTo(sa, 8);
        }
        fixed (byte* p = sa)
        fixed (byte* b = packet)
        {
            if (sendto(fd, b, (nuint)packet.Length, 0, p, sa.Length) == packet.Length) return 0;
            if (Marshal.GetLastPInvokeError() == EPERM) return EPERM;
            throw Error("sendto(raw IP)");
        }
    }

    /// <summary>One datagram or frame if one is queued, else null; never blocks.</summary>
    public static byte[]? TryReceive(int fd, byte[] buffer)
    {
        while (true)
        {
            nint n;
            fixed (byte* b = buffer) n = recv(fd, b, (nuint)buffer.Length, MSG_DONTWAIT);
            if (n >= 0) return buffer.AsSpan(0, (int)n).ToArray();
            var e = Marshal.GetLastPInvokeError();
            if (e == EINTR) continue;
            if (e == EAGAIN) return null;
            throw Error("recv");
        }
    }

    /// <summary>Waits until one of the descriptors is readable or the timeout passes; true if readable.</summary>
    public static bool WaitReadable(IReadOnlyList<int> fds, int timeoutMs)
    {
        var pfds = stackalloc PollFd[fds.Count];
        for (var i = 0; i < fds.Count; i++) pfds[i] = new PollFd { Fd = fds[i], Events = POLLIN };
        while (true)
        {
            var r = poll(pfds, (nuint)fds.Count, timeoutMs);
            if (r >= 0) return r > 0;
            if (Marshal.GetLastPInvokeError() != EINTR) throw Error("poll");
        }
    }

    public static void Close(int fd) => close(fd);
}
