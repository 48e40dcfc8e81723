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

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint readlink(string path, byte* buf, nint size);
}
