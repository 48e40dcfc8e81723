namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// The kernel's BPF run statistics (run_time_ns, run_cnt of every program; <see cref="BpfInfo.RunStats(int)"/>).
/// They are off by default because they cost every program run two clock reads; BPF_ENABLE_STATS with
/// BPF_STATS_RUN_TIME turns them on for as long as the fd it returns stays open (and sysctl
/// kernel.bpf_stats_enabled=1 does system-wide). Needs CAP_SYS_ADMIN.
/// </summary>
public static class BpfStats
{
    const int RunTime = 0; // BPF_STATS_RUN_TIME

    /// <summary>Turns run-time statistics on; they stay on until the returned fd is disposed. Throws <see cref="BpfException"/> (EPERM without CAP_SYS_ADMIN).</summary>
    public static BpfFd EnableRunTime() => new(BpfException.Check("enabling BPF run-time statistics (BPF_ENABLE_STATS)", Native.BpfEnableStats(RunTime)));

    /// <summary>Whether sysctl kernel.bpf_stats_enabled turned them on for everyone (null when it cannot be read).</summary>
    public static bool? EnabledBySysctl()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/bpf_stats_enabled").Trim() != "0";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
