using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Bpfilter.Backend.Log;

/// <summary>
/// Writes nf_log lines to the kernel log through /dev/kmsg, so `dmesg` and `journalctl -k` show
/// them where the kernel's own lines would be, with the statement's level as &lt;N&gt;.
/// Two differences the kernel imposes on user-space writers: the record's facility is LOG_USER
/// (devkmsg_write never lets user space claim LOG_KERN), and /dev/kmsg rate-limits each open file
/// to a burst of 10 lines per 5 s when kernel.printk_devkmsg is "ratelimit" (the default). The
/// kernel's nf_log lines are not rate-limited (rules limit them with `limit`), so each line is
/// written through its own open of /dev/kmsg. With printk_devkmsg=off the kernel refuses writers
/// and <see cref="Write"/> throws.
/// Lines pass the same per-namespace guard nf_log_syslog applies (<see cref="NfLogNamespacePolicy"/>).
/// </summary>
public sealed class KernelLogWriter(NfLogNamespacePolicy policy, string path = KernelLogWriter.DevKmsg)
{
    public const string DevKmsg = "/dev/kmsg";

    public NfLogNamespacePolicy Policy { get; } = policy;

    /// <summary>Writes one line at syslog level 0..7; false when the namespace guard suppresses it, as the kernel would.</summary>
    public bool Write(int level, string line)
    {
        if (level is < 0 or > 7) throw new ArgumentOutOfRangeException(nameof(level), "syslog levels are 0..7");
        if (!Policy.LoggingAllowed()) return false;
        var record = Encoding.UTF8.GetBytes($"<{level}>{line}\n");
        using var kmsg = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        kmsg.Write(record); // one write() is one kernel log record
        return true;
    }

    /// <summary>Formats and writes the line for one event.</summary>
    public bool Write(in LogEvent ev, LogConfig config) => Write(config.Level, NfLogFormatter.Format(ev, config));
}

/// <summary>
/// nf_log_syslog's guard against containers flooding the log: a packet is logged only when its
/// network namespace is the initial one, or when net.netfilter.nf_log_all_netns (a global sysctl
/// that only the initial namespace exposes) is 1; the kernel reads it for every packet.
/// The events come from programs the daemon attached in its own namespace. That namespace is the
/// initial one exactly when it shows /proc/sys/net/netfilter/nf_log_all_netns (the kernel registers
/// that entry for init_net only). Otherwise the sysctl is opened once from inside the initial
/// namespace (a thread setns()es into the first namespace, of pid 1, of this process's threads or
/// of other processes, that shows the entry) and re-read before each line, so changes apply at
/// once as in the kernel. When no initial namespace can be entered, the value cannot be read and
/// nothing is logged: the kernel's default.
/// </summary>
public sealed partial class NfLogNamespacePolicy : IDisposable
{
    public const string SysctlPath = "/proc/sys/net/netfilter/nf_log_all_netns";

    private readonly SafeFileHandle? _allNetns;

    private NfLogNamespacePolicy(bool initial, SafeFileHandle? allNetns, string description)
    {
        IsInitialNamespace = initial;
        _allNetns = allNetns;
        Description = description;
    }

    public bool IsInitialNamespace { get; }
    public string Description { get; }

    /// <summary>The policy for programs attached in the calling thread's network namespace.</summary>
    public static NfLogNamespacePolicy ForCurrentNamespace()
    {
        if (File.Exists(SysctlPath)) return new NfLogNamespacePolicy(true, null, "initial network namespace: always logs");
        var handle = OpenInInitialNamespace();
        return handle is null
            ? new NfLogNamespacePolicy(false, null, $"non-initial network namespace and {SysctlPath} unreadable (no initial namespace could be entered): never logs")
            : new NfLogNamespacePolicy(false, handle, $"non-initial network namespace: logs while {SysctlPath} is 1");
    }

    public bool LoggingAllowed()
    {
        if (IsInitialNamespace) return true;
        if (_allNetns is null) return false;
        Span<byte> buf = stackalloc byte[16];
        var n = RandomAccess.Read(_allNetns, buf, 0);
        return n > 0 && buf[0] != (byte)'0';
    }

    /// <summary>
    /// Opens the sysctl from inside the initial namespace, which is found as the first namespace that
    /// shows the entry among pid 1's, this process's other threads' and then other processes'.
    /// </summary>
    private static SafeFileHandle? OpenInInitialNamespace()
    {
        SafeFileHandle? result = null;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                foreach (var candidate in CandidateNamespaces())
                {
                    SafeFileHandle ns;
                    try { ns = File.OpenHandle(candidate); }
                    catch (Exception e) when (e is UnauthorizedAccessException or IOException) { continue; }
                    using (ns)
                        if (Setns((int)ns.DangerousGetHandle(), 0x40000000 /* CLONE_NEWNET */) != 0) continue;
                    if (File.Exists(SysctlPath))
                    {
                        result = File.OpenHandle(SysctlPath);
                        return;
                    }
                }
            }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join(); // the thread, now in another namespace, ends here
        if (error is not null) throw error;
        return result;
    }

    private static IEnumerable<string> CandidateNamespaces()
    {
        yield return "/proc/1/ns/net";
        foreach (var task in Directory.EnumerateDirectories("/proc/self/task")) yield return task + "/ns/net";
        foreach (var pid in Directory.EnumerateDirectories("/proc"))
            if (char.IsAsciiDigit(Path.GetFileName(pid)[0])) yield return pid + "/ns/net";
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int Setns(int fd, int nstype);

    public void Dispose() => _allNetns?.Dispose();
}
