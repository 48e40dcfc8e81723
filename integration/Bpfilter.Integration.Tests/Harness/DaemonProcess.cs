using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Bpfilter.Integration.Tests.Harness;

/// <summary>
/// bpfilterd (the built assembly, run with dotnet) inside a namespace, listening on a unique socket.
/// Dispose kills it and removes the socket; Log keeps what it printed for failure messages.
/// </summary>
public sealed class DaemonProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _log = new();
    bool _disposed;

    public string SocketPath { get; }
    public NetNs Namespace { get; }

    DaemonProcess(Process p, string socketPath, NetNs ns)
    {
        _process = p;
        SocketPath = socketPath;
        Namespace = ns;
    }

    public bool IsAlive => !_process.HasExited;
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static string MissingReason()
    {
        if (RepoPaths.DaemonDll == null) return "bpfilterd is not built (dotnet build Bpfilter.Daemon)";
        if (RepoPaths.Bfnft == null) return "bfnft is not built (make -C patches/nftables)";
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("BFNFT_LIB")) &&
            !File.Exists(Path.Combine(RepoPaths.RepoRoot, "patches", "nftables", "build", "libbfnft.so")))
            return "the interposer is not built (make -C patches/nftables builds build/libbfnft.so)";
        return "";
    }

    /// <param name="enforce">
    /// Compile and attach BPF (bpfilterd's default). Off (--no-enforce) for protocol and robustness
    /// runs: they compare nf_tables answers, and enforcement refuses features (ct, nat, ...) on purpose.
    /// </param>
    public static DaemonProcess Start(NetNs ns, TimeSpan? startTimeout = null, bool enforce = false)
    {
        var dll = RepoPaths.DaemonDll ?? throw new InvalidOperationException(MissingReason());
        var socket = Path.Combine(Path.GetTempPath(), $"{ns.Name}.sock");
        File.Delete(socket);
        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "netns", "exec", ns.Name, "dotnet", dll, "--socket", socket }) psi.ArgumentList.Add(a);
        if (!enforce) psi.ArgumentList.Add("--no-enforce");
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["DOTNET_TieredPGO"] = "0";
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start bpfilterd");
        var d = new DaemonProcess(p, socket, ns);
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (d._log) d._log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (d._log) d._log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            d.WaitForSocket(startTimeout ?? TimeSpan.FromSeconds(30));
        }
        catch
        {
            d.Dispose();
            throw;
        }
        return d;
    }

    void WaitForSocket(TimeSpan limit)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < limit)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"bpfilterd exited with {_process.ExitCode} before listening:\n{Log}");
            if (File.Exists(SocketPath))
            {
                try
                {
                    using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    s.Connect(new UnixDomainSocketEndPoint(SocketPath));
                    return;
                }
                catch (SocketException) { }
            }
            Thread.Sleep(20);
        }
        throw new TimeoutException($"bpfilterd did not listen on {SocketPath} within {limit.TotalSeconds}s:\n{Log}");
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { File.Delete(SocketPath); } catch (IOException) { }
    }
}
