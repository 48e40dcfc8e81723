using System.Diagnostics;
using System.Text;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// The built bpfilterd (dotnet bpfilterd.dll) inside a namespace of its own, on a socket in a
/// private temp directory. Dispose stops it (SIGTERM, then kill) and removes the directory.
/// </summary>
internal sealed class DaemonProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _log = new();
    public NetNs Ns { get; }
    public TempSocketDir Dir { get; }
    public string SocketPath => Dir.Socket();
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <param name="wrapper">a command the daemon runs under (e.g. setpriv with fewer capabilities)</param>
    public DaemonProcess(string mode = "0600", IReadOnlyList<string>? wrapper = null)
    {
        Ns = new NetNs();
        Dir = new TempSocketDir();
        try
        {
            var psi = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in (string[])["netns", "exec", Ns.Name, .. wrapper ?? [], "dotnet", TestPaths.DaemonDll, "--socket", SocketPath, "--socket-mode", mode])
                psi.ArgumentList.Add(a);
            _process = Process.Start(psi)!;
            _process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine(e.Data); };
            _process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine(e.Data); };
            _process.BeginErrorReadLine();
            _process.BeginOutputReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!File.Exists(SocketPath))
            {
                if (_process.HasExited) throw new InvalidOperationException($"bpfilterd exited with {_process.ExitCode}:\n{Log}");
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"bpfilterd did not listen:\n{Log}");
                Thread.Sleep(50);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public Dictionary<string, string> Env => new() { ["BFNFT_SOCKET"] = SocketPath };

    /// <summary>bfnft ARGS from the daemon's namespace, optionally under setpriv credentials.</summary>
    public ProcResult Bfnft(IEnumerable<string> args, string? stdin = null, string[]? setpriv = null) =>
        setpriv == null
            ? Ns.Exec(TestPaths.Bfnft, args, Env, stdin)
            : Ns.Exec("setpriv", [.. setpriv, TestPaths.Bfnft, .. args], Env, stdin);

    /// <summary>SIGTERM and wait; returns the exit code.</summary>
    public int Terminate()
    {
        if (!_process.HasExited)
        {
            Proc.Run("kill", ["-TERM", _process.Id.ToString()]);
            if (!_process.WaitForExit(15000)) _process.Kill(entireProcessTree: true);
        }
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try { if (_process != null) { Terminate(); _process.Dispose(); } } catch (Exception) { }
        Dir.Dispose();
        Ns.Dispose();
    }
}
