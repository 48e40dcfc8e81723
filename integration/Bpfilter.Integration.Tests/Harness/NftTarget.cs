namespace Bpfilter.Integration.Tests.Harness;

/// <summary>Where a case runs: kernel nf_tables or bpfilterd, each in its own fresh namespace.</summary>
public interface INftTarget : IDisposable
{
    string Label { get; }
    ProcessResult Nft(IReadOnlyList<string> args, string? stdin);
    /// <summary>Empty when healthy; otherwise why the target broke (e.g. the daemon died), with its log.</summary>
    string Health();
    /// <summary>Starts nft (e.g. `monitor`) and leaves it running.</summary>
    BackgroundProcess StartNft(IReadOnlyList<string> args);
    /// <summary>How many sockets are members of NFNLGRP_NFTABLES (nft monitor has subscribed once counted).</summary>
    int NftablesListeners();
}

/// <summary>How many sockets are members of an nfnetlink multicast group (`nft monitor` has subscribed once counted).</summary>
public static class GroupMembers
{
    /// <summary>nl_groups bits of NFNLGRP_NFTABLES (7) and NFNLGRP_NFTRACE (9).</summary>
    public const uint Nftables = 0x40, Trace = 0x100;

    /// <summary>/proc/net/netlink of the namespace: NETLINK_NETFILTER (12) sockets with the group's bit.</summary>
    public static int InKernel(NetNs ns, uint bit)
    {
        var lines = ns.Exec("cat", ["/proc/net/netlink"]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1);
        return lines.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f.Length > 3 && f[1] == "12" && (Convert.ToUInt32(f[3], 16) & bit) != 0);
    }

    /// <summary>Subscriptions the daemon logged ("port N event groups 0x..") that include the group.</summary>
    public static int InDaemon(DaemonProcess daemon, uint bit) =>
        System.Text.RegularExpressions.Regex.Matches(daemon.Log, @"event groups 0x([0-9a-f]+)")
            .Count(m => (Convert.ToUInt32(m.Groups[1].Value, 16) & bit) != 0);
}

/// <summary>The unmodified nft against the kernel.</summary>
public sealed class KernelTarget : INftTarget
{
    readonly NetNs _ns = NetNs.Create();
    public string Label => $"kernel ({_ns.Name})";
    public ProcessResult Nft(IReadOnlyList<string> args, string? stdin) => _ns.Exec("nft", args, stdin);
    public string Health() => "";
    public BackgroundProcess StartNft(IReadOnlyList<string> args) => _ns.Start("nft", args);

    public int NftablesListeners() => GroupMembers.InKernel(_ns, GroupMembers.Nftables);

    public void Dispose() => _ns.Dispose();
}

/// <summary>nft through bfnft (the interposer) against a bpfilterd of its own, both inside the namespace.</summary>
public sealed class DaemonTarget : INftTarget
{
    readonly NetNs _ns;
    readonly DaemonProcess _daemon;
    readonly string _bfnft;

    /// <param name="arguments">more bpfilterd arguments (a case's @daemon-args)</param>
    public DaemonTarget(IReadOnlyList<string>? arguments = null)
    {
        _bfnft = RepoPaths.RequireBfnft();
        _ns = NetNs.Create();
        // bpfilterd as shipped by default: enforcing, BPF where a chain lifts and the kernel's nf_tables
        // otherwise, so every answer is the enforcing daemon's; BFNT_ENFORCE=0 compares the emulation alone.
        bool enforce = Environment.GetEnvironmentVariable("BFNT_ENFORCE") != "0";
        try { _daemon = DaemonProcess.Start(_ns, enforce: enforce, arguments: enforce ? arguments : null); }
        catch { _ns.Dispose(); throw; }
    }

    public DaemonProcess Daemon => _daemon;
    public string Label => $"bpfilterd ({_ns.Name})";

    public ProcessResult Nft(IReadOnlyList<string> args, string? stdin) =>
        _ns.Exec(_bfnft, args, stdin, env: new Dictionary<string, string> { ["BFNFT_SOCKET"] = _daemon.SocketPath });

    public string Health() => _daemon.IsAlive ? "" : $"bpfilterd died; its log:\n{_daemon.Log}";

    public BackgroundProcess StartNft(IReadOnlyList<string> args) =>
        _ns.Start(_bfnft, args, new Dictionary<string, string> { ["BFNFT_SOCKET"] = _daemon.SocketPath });

    /// <summary>Subscriptions the daemon logged ("port N event groups 0x..") that include NFNLGRP_NFTABLES.</summary>
    public int NftablesListeners() => GroupMembers.InDaemon(_daemon, GroupMembers.Nftables);

    /// <summary>
    /// Tables of the kernel's own nf_tables in the daemon's namespace, read with the plain nft. The
    /// daemon places there the chains BPF cannot run, always in tables nft (through bfnft) also lists;
    /// any other table proves some nft call bypassed the daemon.
    /// </summary>
    public ProcessResult KernelTables() => _ns.Exec("nft", ["list", "tables"]);

    /// <summary>The tables the daemon lists to nft.</summary>
    public ProcessResult DaemonTables() => Nft(["list", "tables"], null);

    public void Dispose()
    {
        _daemon.Dispose();
        _ns.Dispose();
    }
}
