namespace Bpfilter.Backend.Libbpf;

/// <summary>The run statistics struct bpf_prog_info carries: run_time_ns and run_cnt.</summary>
public readonly record struct BpfRunStats(uint ProgramId, ulong RunTimeNs, ulong RunCount);

/// <summary>What the kernel reports about a map (the leading fields of struct bpf_map_info).</summary>
public readonly record struct BpfMapInfo(BpfMapType Type, uint Id, int KeySize, int ValueSize, int MaxEntries, uint Flags, string Name);

/// <summary>
/// Kernel ids of programs, links and maps (what bpftool shows), through libbpf's get_info_by_fd.
/// Only the leading fields are read: struct bpf_prog_info starts with {u32 type; u32 id},
/// struct bpf_link_info with {u32 type; u32 id; u32 prog_id}, struct bpf_map_info with
/// {u32 type, id, key_size, value_size, max_entries, map_flags; char name[16]}; the kernel fills at
/// most the size passed.
/// </summary>
public static unsafe class BpfInfo
{
    /// <summary>The program's kernel id, 0 if the fd is not a program.</summary>
    public static uint ProgramId(int fd)
    {
        var buf = stackalloc byte[8];
        uint len = 8;
        return Native.BpfProgGetInfoByFd(fd, buf, &len) == 0 ? *(uint*)(buf + 4) : 0;
    }

    /// <summary>The link's id and the id of the program it runs now.</summary>
    public static (uint LinkId, uint ProgramId) Link(int fd)
    {
        var buf = stackalloc byte[12];
        uint len = 12;
        return Native.BpfLinkGetInfoByFd(fd, buf, &len) == 0 ? (*(uint*)(buf + 4), *(uint*)(buf + 8)) : (0, 0);
    }

    /// <summary>BPF_LINK_TYPE_NETFILTER, and the offset of the netfilter member (pf, hooknum, priority, flags) of struct bpf_link_info's union.</summary>
    const uint NetfilterLinkType = 10;
    const int NetfilterOffset = 16, NetfilterInfoSize = 32;

    /// <summary>The priority a netfilter link runs at, as the kernel holds it; null when the fd is no netfilter link.</summary>
    public static int? NetfilterPriority(int fd)
    {
        var buf = stackalloc byte[NetfilterInfoSize];
        new Span<byte>(buf, NetfilterInfoSize).Clear();
        uint len = NetfilterInfoSize;
        if (Native.BpfLinkGetInfoByFd(fd, buf, &len) != 0 || *(uint*)buf != NetfilterLinkType) return null;
        return *(int*)(buf + NetfilterOffset + 8);
    }

    /// <summary>Offsets of run_time_ns and run_cnt in struct bpf_prog_info (since 5.1); the kernel fills at most the size passed.</summary>
    const int RunTimeNsOffset = 192, RunCountOffset = 200, RunStatsSize = 208;

    /// <summary>
    /// The program's id and the time and count of its runs the kernel accounted (only while BPF statistics are on:
    /// <see cref="BpfStats"/>); null if the fd is not a program. The buffer is zeroed: its array pointers and
    /// counts stay 0, so the kernel copies no arrays.
    /// </summary>
    public static BpfRunStats? RunStats(int fd)
    {
        var buf = stackalloc byte[RunStatsSize];
        new Span<byte>(buf, RunStatsSize).Clear();
        uint len = RunStatsSize;
        if (Native.BpfProgGetInfoByFd(fd, buf, &len) != 0 || len < RunStatsSize) return null;
        return new BpfRunStats(*(uint*)(buf + 4), *(ulong*)(buf + RunTimeNsOffset), *(ulong*)(buf + RunCountOffset));
    }

    /// <summary>Offset of verified_insns in struct bpf_prog_info (since 5.16).</summary>
    const int VerifiedInsnsOffset = 216, VerifiedInsnsSize = 220;

    /// <summary>Instructions the verifier processed when it loaded the program (bpftool's verified_insns); null if unknown.</summary>
    public static uint? VerifiedInstructions(int fd)
    {
        var buf = stackalloc byte[VerifiedInsnsSize];
        new Span<byte>(buf, VerifiedInsnsSize).Clear();
        uint len = VerifiedInsnsSize;
        if (Native.BpfProgGetInfoByFd(fd, buf, &len) != 0 || len < VerifiedInsnsSize) return null;
        return *(uint*)(buf + VerifiedInsnsOffset);
    }

    /// <summary>
    /// As <see cref="RunStats(int)"/> for a program the daemon holds no fd of (a pinned link's netfilter dispatcher
    /// after a restart), opened by id: that needs CAP_SYS_ADMIN, as turning the statistics on does; null without it.
    /// </summary>
    public static BpfRunStats? RunStatsById(uint id)
    {
        int fd = Native.BpfProgGetFdById(id);
        if (fd < 0) return null;
        try { return RunStats(fd); }
        finally { Native.Close(fd); }
    }

    public static BpfMapInfo Map(int fd)
    {
        var buf = stackalloc byte[40];
        uint len = 40;
        BpfException.Check("reading map info", Native.BpfMapGetInfoByFd(fd, buf, &len));
        var u = (uint*)buf;
        var name = new string((sbyte*)(buf + 24), 0, 16).TrimEnd('\0');
        return new BpfMapInfo((BpfMapType)u[0], u[1], (int)u[2], (int)u[3], (int)u[4], u[5], name);
    }
}
