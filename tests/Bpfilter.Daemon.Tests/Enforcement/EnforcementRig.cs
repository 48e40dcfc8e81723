using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// bpfilterd enforcing in a firewall namespace, a peer namespace joined to it by a veth pair
/// (198.18.7.1 on the firewall side, 198.18.7.2 on the peer), and probes that tell whether a TCP SYN
/// from the peer reached the firewall's stack (a closed port answers with a reset) or was dropped.
/// Everything is removed on dispose, also when a test fails.
/// </summary>
internal sealed partial class EnforcementRig : IDisposable
{
    public const string FwAddr = "198.18.7.1";
    public const string PeerAddr = "198.18.7.2";

    public DaemonProcess Daemon { get; }
    public NetNs Peer { get; }
    public string FwDev { get; }
    /// <summary>The peer's end of the veth pair.</summary>
    public string PeerDev { get; }

    /// <param name="daemonArguments">more bpfilterd arguments (e.g. --placement bpf-only)</param>
    public EnforcementRig(params string[] daemonArguments)
    {
        RepoPaths.BuildInterposer();
        Daemon = daemonArguments.Length == 0 ? new DaemonProcess() : DaemonProcess.Enforcing(daemonArguments);
        try
        {
            Peer = new NetNs();
            var id = Guid.NewGuid().ToString("N")[..6];
            FwDev = "bfe" + id;
            var peerDev = PeerDev = "bfq" + id;
            Daemon.Ns.AddVeth(FwDev, Peer, peerDev);
            Daemon.Ns.Ip("addr", "add", FwAddr + "/24", "dev", FwDev);
            Peer.Ip("addr", "add", PeerAddr + "/24", "dev", peerDev);
            foreach (var (ns, dev) in new[] { (Daemon.Ns, FwDev), (Peer, peerDev), (Daemon.Ns, "lo"), (Peer, "lo") })
                ns.Ip("link", "set", dev, "up");
            Daemon.Ns.WaitUntilUp(FwDev);
            Peer.WaitUntilUp(peerDev);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>nft (through bfnft) in the firewall namespace; asserts success unless told otherwise.</summary>
    public ProcessResult Nft(string script, bool expectSuccess = true)
    {
        var r = Daemon.Bfnft(["-f", "-"], script);
        if (expectSuccess) Assert.True(r.Exit == 0, $"nft -f failed ({r.Exit}): {r.Stderr}\n{script}\ndaemon log:\n{Daemon.Log}");
        return r;
    }

    public string ListRuleset()
    {
        var r = Daemon.Bfnft(["list", "ruleset"]);
        Assert.True(r.Exit == 0, r.Stderr);
        return r.Stdout;
    }

    public string Explain()
    {
        var r = Daemon.Ns.Exec(Daemon.Command[0], [.. Daemon.Command.Skip(1), "explain", "--socket", Daemon.SocketPath]);
        Assert.True(r.Exit == 0, $"bpfilterd explain: {r.Stderr}");
        return r.Stdout;
    }

    /// <summary>Ids of the programs that filter, per attach point, from `bpfilterd explain`.</summary>
    public Dictionary<string, uint> ProgramIds()
    {
        var ids = new Dictionary<string, uint>();
        string? hook = null;
        foreach (var line in Explain().Split('\n'))
        {
            if (line.StartsWith("== rules", StringComparison.Ordinal)) break;
            if (line.Length > 0 && !line.StartsWith(' ') && !line.StartsWith("==", StringComparison.Ordinal)) hook = line;
            else if (hook != null && ProgramId().Match(line) is { Success: true } m) ids[hook] = uint.Parse(m.Groups[1].Value);
        }
        return ids;
    }

    /// <summary>Link ids per attach point, from `bpfilterd explain`.</summary>
    public Dictionary<string, uint> LinkIds()
    {
        var ids = new Dictionary<string, uint>();
        string? hook = null;
        foreach (var line in Explain().Split('\n'))
        {
            if (line.StartsWith("== rules", StringComparison.Ordinal)) break;
            if (line.Length > 0 && !line.StartsWith(' ') && !line.StartsWith("==", StringComparison.Ordinal)) hook = line;
            else if (hook != null && LinkId().Match(line) is { Success: true } m) ids[hook] = uint.Parse(m.Groups[1].Value);
        }
        return ids;
    }

    /// <summary>The kernel's own nf_tables in the firewall namespace (plain nft, not bfnft): what the daemon placed there.</summary>
    public string KernelRuleset()
    {
        var r = Daemon.Ns.Exec("nft", ["list", "ruleset"]);
        Assert.True(r.Exit == 0, r.Stderr);
        return r.Stdout;
    }

    [GeneratedRegex(@"^  link id (\d+)")]
    private static partial Regex LinkId();

    [GeneratedRegex(@"(?:tail-calls program id|, program id) (\d+)")]
    private static partial Regex ProgramId();

    /// <summary>
    /// True when a TCP SYN from the peer to <paramref name="port"/> (closed) reached the firewall's stack
    /// (the reset comes back: connection refused), false when it was dropped (no answer before the timeout).
    /// </summary>
    public bool Delivered(int port)
    {
        var r = Peer.Exec("timeout", ["6", "bash", "-c", $"exec 3<>/dev/tcp/{FwAddr}/{port}"]);
        if (r.Exit == 1 && r.Stderr.Contains("refused")) return true;
        if (r.Exit == 124) return false;
        throw new InvalidOperationException($"probe to port {port}: exit {r.Exit}: {r.Stderr}");
    }

    public void Dispose()
    {
        Daemon.Dispose(); // also deletes the firewall namespace, and with it the veth pair
        Peer?.Dispose();
    }
}
