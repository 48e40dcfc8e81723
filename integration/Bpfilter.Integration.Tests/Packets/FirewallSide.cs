using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// A topology plus what filters in its fw namespace: kernel nf_tables driven by nft, or bpfilterd
/// (started inside fw) driven by nft through bfnft. Built once and reused for every case.
/// </summary>
public sealed class FirewallSide : IDisposable
{
    public Topology Topology { get; }
    DaemonProcess? _daemon;
    readonly string? _bfnft;

    public string Label => _daemon == null ? $"kernel (fw {Topology.Fw.Name})" : $"bpfilterd (fw {Topology.Fw.Name})";

    FirewallSide(Topology t, DaemonProcess? daemon, string? bfnft)
    {
        Topology = t;
        _daemon = daemon;
        _bfnft = bfnft;
    }

    public static FirewallSide Kernel() => Kernel(TopologyKind.Routed);

    public static FirewallSide Kernel(TopologyKind kind) => new(Topology.Create(kind), null, null);

    public static FirewallSide Daemon() => Daemon(TopologyKind.Routed);

    /// <param name="arguments">more bpfilterd arguments (e.g. --placement bpf-only)</param>
    public static FirewallSide Daemon(TopologyKind kind, IReadOnlyList<string>? arguments = null)
    {
        var bfnft = RepoPaths.RequireBfnft();
        var t = Topology.Create(kind);
        try
        {
            return new FirewallSide(t, DaemonProcess.Start(t.Fw, enforce: true, arguments: arguments), bfnft) { _arguments = arguments };
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public ProcessResult Nft(IReadOnlyList<string> args, string? stdin = null) =>
        _daemon == null
            ? Topology.Fw.Exec("nft", args, stdin)
            : Topology.Fw.Exec(_bfnft!, args, stdin, env: new Dictionary<string, string> { ["BFNFT_SOCKET"] = _daemon.SocketPath });

    /// <summary>Empty when healthy; otherwise why not (the daemon died), with its log.</summary>
    public string Health() => _daemon == null || _daemon.IsAlive ? "" : $"bpfilterd died; its log:\n{_daemon.Log}";

    public string DaemonLog => _daemon?.Log ?? "";

    IReadOnlyList<string>? _arguments;

    /// <summary>
    /// Starts a fresh bpfilterd if the previous one died (its failure was reported by the case it
    /// died in), so one crash does not fail every later case. Returns what happened, or "".
    /// </summary>
    public string Revive()
    {
        if (_daemon == null || _daemon.IsAlive) return "";
        var log = _daemon.Log;
        _daemon.Dispose();
        _daemon = DaemonProcess.Start(Topology.Fw, enforce: true, arguments: _arguments);
        return $"bpfilterd had died and was restarted; its last log:\n{log}";
    }

    public void Dispose()
    {
        _daemon?.Dispose();
        Topology.Dispose();
    }
}
