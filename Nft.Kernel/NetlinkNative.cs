using System.Runtime.InteropServices;

namespace Nft.Kernel;

/// <summary>The libc calls a raw NETLINK_NETFILTER socket needs (source-generated, NativeAOT-safe).</summary>
internal static unsafe partial class NetlinkNative
{
    public const int AF_NETLINK = 16, SOCK_RAW = 3, SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33, SO_RCVTIMEO = 20;
    public const int SOL_NETLINK = 270, NETLINK_CAP_ACK = 10, NETLINK_EXT_ACK = 11;
    public const int MSG_DONTWAIT = 0x40, MSG_TRUNC = 0x20, MSG_PEEK = 0x2;
    public const int CLONE_NEWNET = 0x40000000;
    public const int EINTR = 4, EAGAIN = 11, ENOBUFS = 105;

    [StructLayout(LayoutKind.Sequential)]
    public struct SockaddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint Pid;
        public uint Groups;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timeval
    {
        public long Sec;
        public long Usec;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int bind(int fd, SockaddrNl* addr, int len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockname(int fd, SockaddrNl* addr, int* len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, int len);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint sendto(int fd, byte* buf, nuint len, int flags, SockaddrNl* addr, int addrlen);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint recv(int fd, byte* buf, nuint len, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setns(int fd, int nstype);

    public static int LastErrno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => $"errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})";

    /// <summary>An int socket option; throws naming it.</summary>
    public static void SetInt(int fd, int level, int name, int value)
    {
        if (setsockopt(fd, level, name, &value, sizeof(int)) != 0) throw Io($"setsockopt({level}, {name})");
    }

    /// <summary>The last call's errno as an IOException naming <paramref name="what"/>.</summary>
    public static IOException Io(string what)
    {
        int e = LastErrno;
        return new IOException($"{what}: {Describe(e)}", e);
    }
}
