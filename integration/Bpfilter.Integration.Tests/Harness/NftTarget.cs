namespace Bpfilter.Integration.Tests.Harness;

/// <summary>Where a case runs: kernel nf_tables or bpfilterd, each in its own fresh namespace.</summary>
public interface INftTarget : IDisposable
{
    string Label { get; }
    ProcessResult Nft(IReadOnlyList<string> args, string? stdin);
    /// <summary>Empty when healthy; otherwise why the target broke (e.g. the daemon died), with its log.</summary>
    string Health();
}

/// <summary>The unmodified nft against the kernel.</summary>
public sealed class KernelTarget : INftTarget
{
    readonly NetNs _ns = NetNs.Create();
    public string Label => $"kernel ({_ns.Name})";
    public ProcessResult Nft(IReadOnlyList<string> args, string? stdin) => _ns.Exec("nft", args, stdin);
    public string Health() => "";
    public void Dispose() => _ns.Dispose();
}

/// <summary>nft through bfnft (the interposer) against a bpfilterd of its own, both inside the namespace.</summary>
public sealed class DaemonTarget : INftTarget
{
    readonly NetNs _ns;
    readonly DaemonProcess _daemon;
    readonly string _bfnft;

    public DaemonTarget()
    {
        _bfnft = RepoPaths.RequireBfnft();
        _ns = NetNs.Create();
        // Emulation only by default (the nf_tables answers are what this compares); BFNT_ENFORCE=1 runs
        // bpfilterd as shipped, compiling and attaching every base chain, which refuses some features on purpose.
        bool enforce = Environment.GetEnvironmentVariable("BFNT_ENFORCE") == "1";
        try { _daemon = DaemonProcess.Start(_ns, enforce: enforce); }
        catch { _ns.Dispose(); throw; }
    }

    public DaemonProcess Daemon => _daemon;
    public string Label => $"bpfilterd ({_ns.Name})";

    public ProcessResult Nft(IReadOnlyList<string> args, string? stdin) =>
        _ns.Exec(_bfnft, args, stdin, env: new Dictionary<string, string> { ["BFNFT_SOCKET"] = _daemon.SocketPath });

    public string Health() => _daemon.IsAlive ? "" : $"bpfilterd died; its log:\n{_daemon.Log}";

    /// <summary>
    /// The kernel's own ruleset in the daemon's namespace, read with the plain nft: it must stay empty,
    /// which proves every bfnft call really went to the daemon and nothing leaked to the kernel.
    /// </summary>
    public ProcessResult KernelRuleset() => _ns.Exec("nft", ["list", "ruleset"]);

    public void Dispose()
    {
        _daemon.Dispose();
        _ns.Dispose();
    }
}
