using System.Text;
using Nft.Bytecode.Expressions;

namespace Nft.Kernel;

/// <summary>
/// An xtables `bpf` match (xt_bpf revision 1, run by nft_compat in an nf_tables rule) on a program pinned in the bpf file
/// system: it runs the BPF_PROG_TYPE_SOCKET_FILTER program on the packet and matches when it returns nonzero. The info is
/// struct xt_bpf_info_v1 (linux/netfilter/xt_bpf.h): mode u16 (XT_BPF_MODE_FD_PINNED, 1), bpf_program_num_elem u16, fd s32,
/// path[XT_BPF_PATH_MAX = 512], then the kernel's own program pointer; 528 bytes. The kernel opens the path when it checks
/// the rule, in the sending process's mount namespace, and keeps the program for as long as the rule lives.
/// </summary>
public static class XtBpfMatch
{
    const int PathMax = 512;
    const int InfoSize = 2 + 2 + 4 + PathMax + 8;
    const ushort ModeFdPinned = 1;

    /// <summary>Whether nft_compat runs the match in a table of <paramref name="family"/>: ip, ip6, inet (netdev is refused, EOPNOTSUPP).</summary>
    public static bool Runs(byte family) => family is 2 or 10 or 1;

    /// <summary>Whether <paramref name="path"/> fits xt_bpf's path (NUL-terminated).</summary>
    public static bool Fits(string path) => Encoding.UTF8.GetByteCount(path) < PathMax;

    public static MatchExpr Pinned(string path)
    {
        if (!Fits(path)) throw new ArgumentException($"xt_bpf path {path}: longer than {PathMax - 1} bytes");
        var info = new byte[InfoSize];
        BitConverter.TryWriteBytes(info.AsSpan(0), ModeFdPinned);
        Encoding.UTF8.GetBytes(path, info.AsSpan(8));
        return new MatchExpr("bpf", 1, info);
    }
}

/// <summary>A rule's `limit` expression: the caller's table, chain, rule handle and expression index.</summary>
public readonly record struct LimitAt(byte Family, string Table, string Chain, ulong Handle, int Index);
