using System.Runtime.InteropServices;

namespace Bpfilter.Daemon.Server;

/// <summary>The few libc calls the socket server needs that .NET does not expose.</summary>
internal static unsafe partial class LibC
{
    public const int SOL_SOCKET = 1;
    public const int SO_PEERCRED = 17;
    public const int SO_PEERPIDFD = 77;
    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const uint STATX_TYPE = 0x1;
    public const ushort S_IFMT = 0xF000;
    public const ushort S_IFSOCK = 0xC000;
    const long SYS_pidfd_send_signal = 424; // same number on every architecture (unified syscall table)

    [StructLayout(LayoutKind.Sequential)]
    public struct UCred
    {
        public int Pid;
        public uint Uid;
        public uint Gid;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, ref uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial long syscall(long number, int fd, int sig, void* info, uint flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>Signal 0 through a pidfd: succeeds only while that very process is alive (no pid reuse).</summary>
    public static bool PidfdAlive(int pidfd) => syscall(SYS_pidfd_send_signal, pidfd, 0, null, 0) == 0;

    /// <summary>The file type bits of path without following a final symlink, or null if it does not exist.</summary>
    public static ushort? FileType(string path)
    {
        byte* buf = stackalloc byte[256]; // struct statx
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE, buf) != 0) return null;
        return (ushort)(*(ushort*)(buf + 28) & S_IFMT); // stx_mode
    }
}
