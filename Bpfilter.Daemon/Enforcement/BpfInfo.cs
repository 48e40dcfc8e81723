using System.Runtime.InteropServices;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Kernel ids of programs and links (what bpftool shows), through libbpf's get_info_by_fd. Only the
/// leading fields are read: struct bpf_prog_info starts with {u32 type; u32 id}, struct
/// bpf_link_info with {u32 type; u32 id; u32 prog_id}; the kernel fills at most the size we pass.
/// </summary>
internal static unsafe partial class BpfInfo
{
    [LibraryImport("libbpf.so.1", EntryPoint = "bpf_prog_get_info_by_fd")]
    private static partial int ProgGetInfo(int fd, byte* info, uint* len);

    [LibraryImport("libbpf.so.1", EntryPoint = "bpf_link_get_info_by_fd")]
    private static partial int LinkGetInfo(int fd, byte* info, uint* len);

    public static uint ProgramId(int fd)
    {
        var buf = stackalloc byte[8];
        uint len = 8;
        return ProgGetInfo(fd, buf, &len) == 0 ? *(uint*)(buf + 4) : 0;
    }

    /// <summary>The link's id and the id of the program it runs now.</summary>
    public static (uint LinkId, uint ProgramId) Link(int fd)
    {
        var buf = stackalloc byte[12];
        uint len = 12;
        return LinkGetInfo(fd, buf, &len) == 0 ? (*(uint*)(buf + 4), *(uint*)(buf + 8)) : (0, 0);
    }
}
