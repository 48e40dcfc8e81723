using System.Runtime.InteropServices;
using System.Text;

namespace Bpfilter.Daemon.Persistence;

/// <summary>The inode of this process's network namespace (what `stat -L /proc/self/ns/net` shows): names its state file and pin directory.</summary>
internal static unsafe partial class NetnsInode
{
    public static ulong Current()
    {
        // the magic link reads "net:[4026531840]"
        byte* buf = stackalloc byte[128];
        nint n = readlink("/proc/self/ns/net", buf, 128);
        if (n <= 0) throw new IOException($"cannot read /proc/self/ns/net (errno {Marshal.GetLastPInvokeError()})");
        var target = Encoding.ASCII.GetString(buf, (int)n);
        int open = target.IndexOf('['), close = target.IndexOf(']');
        if (open < 0 || close <= open + 1 || !ulong.TryParse(target.AsSpan(open + 1, close - open - 1), out var inode))
            throw new IOException($"/proc/self/ns/net reads '{target}', not net:[INODE]");
        return inode;
    }

    /// <summary>The namespace's cookie (SO_NETNS_COOKIE): unique among all namespaces since boot, unlike inodes.</summary>
    public static ulong Cookie()
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
        ulong cookie = 0;
        uint len = 8;
        if (getsockopt((int)s.Handle, 1 /* SOL_SOCKET */, 71 /* SO_NETNS_COOKIE */, &cookie, ref len) != 0 || len != 8)
            throw new IOException($"SO_NETNS_COOKIE failed (errno {Marshal.GetLastPInvokeError()})");
        return cookie;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getsockopt(int fd, int level, int name, void* value, ref uint length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint readlink(string path, byte* buf, nint size);
}
