using System.Globalization;
using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon;

/// <summary>bpfilterd's command line.</summary>
public sealed record Options(string SocketPath, UnixFileMode SocketMode, bool Foreground, bool Enforce = true, bool Explain = false,
    bool BpfOnly = false, string? Fault = null, string StateDir = Options.DefaultStateDir, string PinDir = Options.DefaultPinDir,
    Bpfilter.Daemon.Metrics.MetricsListen? Metrics = null, bool BpfStats = true, bool ChainTails = true)
{
    public const string DefaultStateDir = "/run/bpfilterd";
    public const string DefaultPinDir = "/sys/fs/bpf/bpfilterd";

    public const string Usage =
        "usage: bpfilterd [--socket PATH] [--socket-mode OCTAL] [--foreground] [--no-enforce]\n" +
        "                 [--placement auto|bpf-only] [--state-dir DIR] [--pin-dir DIR]\n" +
        "                 [--metrics tcp:ADDRESS:PORT|unix:PATH [--no-bpf-stats]] [--no-chain-tails]\n" +
        "       bpfilterd explain [--socket PATH]\n" +
        "  --socket PATH        Unix socket bfnft connects to (default " + DaemonServer.DefaultSocketPath + ")\n" +
        "  --socket-mode OCTAL  permissions of the socket file (default 0600; tests only: peers are\n" +
        "                       checked for CAP_NET_ADMIN whatever the mode)\n" +
        "  --foreground         stay attached to the terminal; bpfilterd always does, as a\n" +
        "                       service manager expects, so this is the default and only mode\n" +
        "  --no-enforce         answer nft as nf_tables would but compile and attach nothing (protocol\n" +
        "                       tests, machines without BPF); by default every base chain runs as BPF\n" +
        "  --placement auto     (default) a base chain BPF cannot run faithfully runs in the kernel's own\n" +
        "                       nf_tables, same family, hook and priority; the log and explain say why\n" +
        "  --placement bpf-only refuse such a chain instead, naming the rule and expression\n" +
        "  --state-dir DIR      where the committed ruleset is saved after every commit and restored from\n" +
        "                       at start, as DIR/NETNS-INODE.state (default " + DefaultStateDir + ")\n" +
        "  --pin-dir DIR        bpf file system directory where attach points stay pinned, as\n" +
        "                       DIR/NETNS-INODE/, so filtering outlives the daemon (default " + DefaultPinDir + ")\n" +
        "  --metrics tcp:127.0.0.1:PORT | tcp:[::1]:PORT | unix:PATH\n" +
        "                       serve Prometheus metrics at GET /metrics (off by default): rule and chain\n" +
        "                       counters, placement, BPF run time and count (turns BPF statistics on),\n" +
        "                       commits and refusals; TCP on a loopback address only, a Unix socket mode 0600\n" +
        "  --no-bpf-stats       with --metrics, leave BPF run-time statistics off (they add two clock reads\n" +
        "                       to every BPF program run on the machine); run time and count then move only\n" +
        "                       while sysctl kernel.bpf_stats_enabled=1\n" +
        "  --no-chain-tails     rules appended after a classified chain are not loaded as a small tail program\n" +
        "                       (by default they are, leaving the big one as it is: nft add rule in milliseconds);\n" +
        "                       they go into the classifier's tables or the chain is compiled and loaded anew\n" +
        "  explain              print where each base chain is attached, the lifted rules and the\n" +
        "                       BPF instructions, as the daemon on PATH sees them (PATH.explain socket)";

    public static readonly Options Default = new(DaemonServer.DefaultSocketPath, DaemonServer.DefaultSocketMode, true);

    /// <summary>Parses argv; returns null with an error message (or "" for --help).</summary>
    public static Options? Parse(IReadOnlyList<string> args, out string error)
    {
        var o = Default;
        error = "";
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            string? Value()
            {
                if (i + 1 < args.Count) return args[++i];
                return null;
            }
            switch (a)
            {
                case "--socket":
                    var path = Value();
                    if (string.IsNullOrEmpty(path)) { error = "--socket needs a path"; return null; }
                    o = o with { SocketPath = path };
                    break;
                case "--socket-mode":
                    var mode = Value();
                    if (mode == null || !TryParseOctal(mode, out var m)) { error = $"--socket-mode needs an octal mode such as 0600, not '{mode}'"; return null; }
                    o = o with { SocketMode = m };
                    break;
                case "--foreground":
                    o = o with { Foreground = true };
                    break;
                case "--no-enforce":
                    o = o with { Enforce = false };
                    break;
                case "--placement":
                    var placement = Value();
                    if (placement is not ("auto" or "bpf-only")) { error = $"--placement needs auto or bpf-only, not '{placement}'"; return null; }
                    o = o with { BpfOnly = placement == "bpf-only" };
                    break;
                case "--state-dir":
                    var stateDir = Value();
                    if (string.IsNullOrEmpty(stateDir)) { error = "--state-dir needs a directory"; return null; }
                    o = o with { StateDir = stateDir };
                    break;
                case "--pin-dir":
                    var pinDir = Value();
                    if (string.IsNullOrEmpty(pinDir)) { error = "--pin-dir needs a directory"; return null; }
                    o = o with { PinDir = pinDir };
                    break;
                case "--metrics":
                    var spec = Value();
                    if (string.IsNullOrEmpty(spec)) { error = "--metrics needs tcp:ADDRESS:PORT or unix:PATH"; return null; }
                    if (Bpfilter.Daemon.Metrics.MetricsListen.Parse(spec, out error) is not { } listen) return null;
                    o = o with { Metrics = listen };
                    break;
                case "--no-chain-tails":
                    o = o with { ChainTails = false };
                    break;
                case "--no-bpf-stats":
                    o = o with { BpfStats = false };
                    break;
                case "--test-fault":
                    // tests only: STAGE=FILE fails a stage of the cross-side transaction (kernel-commit, bpf-prepare, or
                    // lingering-delete: the second kernel transaction, EnforcingBackend.Lingering.cs) while FILE exists; a FILE
                    // that says "kill" kills the daemon there instead
                    var fault = Value();
                    if (fault?.Split('=', 2) is not [("kernel-commit" or "bpf-prepare" or "lingering-delete"), { Length: > 0 }])
                    {
                        error = $"--test-fault needs kernel-commit=FILE, bpf-prepare=FILE or lingering-delete=FILE, not '{fault}'";
                        return null;
                    }
                    o = o with { Fault = fault };
                    break;
                case "explain" when i == 0:
                    o = o with { Explain = true };
                    break;
                case "-h" or "--help":
                    return null;
                default:
                    error = $"unknown argument '{a}'";
                    return null;
            }
        }
        return o;
    }

    static bool TryParseOctal(string s, out UnixFileMode mode)
    {
        mode = 0;
        if (s.Length == 0 || s.Length > 4) return false;
        int v = 0;
        foreach (char c in s)
        {
            if (c < '0' || c > '7') return false;
            v = v * 8 + (c - '0');
        }
        if (v > 0x1ff) return false; // permission bits only: no setuid/setgid/sticky on a socket
        mode = (UnixFileMode)v;
        return true;
    }
}
