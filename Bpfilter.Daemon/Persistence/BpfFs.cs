using System.Runtime.InteropServices;

namespace Bpfilter.Daemon.Persistence;

/// <summary>Makes sure pins can be made under a directory: it must be on a BPF file system (mounted at /sys/fs/bpf when it is not yet).</summary>
internal static partial class BpfFs
{
    public const string DefaultRoot = "/sys/fs/bpf";

    /// <summary>True when <paramref name="dir"/> is on a bpf file system (the longest mount point above it in /proc/self/mounts).</summary>
    public static bool IsBpfFs(string dir)
    {
        var full = Path.GetFullPath(dir).TrimEnd('/') + "/";
        string? best = null, type = null;
        foreach (var line in File.ReadLines("/proc/self/mounts"))
        {
            var f = line.Split(' ');
            if (f.Length < 3) continue;
            var mp = f[1].Replace("\\040", " ").TrimEnd('/') + "/";
            if (full.StartsWith(mp, StringComparison.Ordinal) && (best == null || mp.Length >= best.Length))
            {
                best = mp;
                type = f[2];
            }
        }
        return type == "bpf";
    }

    /// <summary>
    /// Mounts a bpf file system at /sys/fs/bpf when <paramref name="dir"/> lies under it and it is not
    /// mounted; returns an error message when <paramref name="dir"/> still is not on one.
    /// </summary>
    public static string? Ensure(string dir)
    {
        if (IsBpfFs(dir)) return null;
        var full = Path.GetFullPath(dir);
        if (full == DefaultRoot || full.StartsWith(DefaultRoot + "/", StringComparison.Ordinal))
        {
            if (mount("bpf", DefaultRoot, "bpf", 0, IntPtr.Zero) != 0)
                return $"mounting a bpf file system at {DefaultRoot} failed (errno {Marshal.GetLastPInvokeError()})";
            if (IsBpfFs(dir)) return null;
        }
        return $"{dir} is not on a bpf file system";
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string fstype, ulong flags, IntPtr data);
}
