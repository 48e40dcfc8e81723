namespace Bpfilter.Daemon.Persistence;

/// <summary>The inode of this process's network namespace (what `stat -L /proc/self/ns/net` shows): names its state file and pin directory.</summary>
internal static class NetnsInode
{
    public static ulong Current()
    {
        // the link reads "net:[4026531840]"
        var target = File.ResolveLinkTarget("/proc/self/ns/net", returnFinalTarget: false)?.LinkTarget
            ?? throw new IOException("/proc/self/ns/net is not a link");
        int open = target.IndexOf('['), close = target.IndexOf(']');
        if (open < 0 || close <= open + 1 || !ulong.TryParse(target.AsSpan(open + 1, close - open - 1), out var inode))
            throw new IOException($"/proc/self/ns/net reads '{target}', not net:[INODE]");
        return inode;
    }
}
