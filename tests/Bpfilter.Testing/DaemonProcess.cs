using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Bpfilter.Testing;

/// <summary>
/// bpfilterd (the built assembly run with dotnet, or the executable $BFNT_DAEMON_BIN names) inside a namespace, listening on a socket in a
/// private temp directory. Log is what it printed (across restarts): its stdout and stderr go to a file, so a line
/// written before an answer is in Log once the answer arrived (a pipe read asynchronously gave no such order). It can
/// be signalled, killed and restarted with the same arguments. Dispose stops it (SIGTERM, then
/// SIGKILL), removes the directory, and deletes the namespace when the daemon made it.
/// </summary>
public sealed class DaemonProcess : IDisposable
{
    public const int SIGKILL = 9, SIGTERM = 15;

    string? _finalLog;
    readonly List<string> _arguments;
    readonly IReadOnlyList<string> _wrapper;
    readonly bool _ownsNamespace;
    readonly TimeSpan _startTimeout;
    Process? _process;
    bool _disposed;

    public NetNs Ns { get; }
    public TempSocketDir Dir { get; }
    public string SocketPath => Dir.Socket();
    /// <summary>The command this daemon runs before its arguments: `dotnet bpfilterd.dll`, or $BFNT_DAEMON_BIN alone.</summary>
    public IReadOnlyList<string> Command { get; }
    /// <summary>The file bpfilterd's stdout and stderr are appended to (in the private directory).</summary>
    public string LogPath => Path.Combine(Dir.Path, "bpfilterd.log");

    public string Log => _finalLog ?? ReadLog();

    string ReadLog()
    {
        try
        {
            using var f = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return new StreamReader(f, Encoding.UTF8).ReadToEnd();
        }
        catch (FileNotFoundException) { return ""; }
        catch (DirectoryNotFoundException) { return ""; }
    }

    /// <summary>Waits until the log holds <paramref name="text"/>, for lines bpfilterd writes on its own time (timers, signals).</summary>
    public bool WaitForLog(string text, TimeSpan timeout)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!Log.Contains(text))
        {
            if (sw.Elapsed > timeout) return false;
            Thread.Sleep(20);
        }
        return true;
    }
    public bool IsAlive => _process is { HasExited: false };
    /// <summary>The daemon's pid (ip netns exec execs dotnet or the executable, so it is bpfilterd's own).</summary>
    public int Pid => _process?.Id ?? 0;

    /// <summary>Environment for bfnft: the socket this daemon listens on.</summary>
    public Dictionary<string, string> Env => new() { ["BFNFT_SOCKET"] = SocketPath };

    /// <summary>An enforcing bpfilterd in a namespace of its own, its socket created with <paramref name="mode"/>.</summary>
    /// <param name="wrapper">a command the daemon runs under, which execs it (e.g. setpriv with fewer capabilities)</param>
    public DaemonProcess(string mode = "0600", IReadOnlyList<string>? wrapper = null)
        : this(new NetNs(), ownsNamespace: true, enforce: true, mode, null, wrapper) { }

    /// <param name="ns">The namespace to run in; the caller keeps owning it.</param>
    /// <param name="enforce">
    /// Compile and attach BPF (bpfilterd's default). Off (--no-enforce) for protocol and robustness
    /// runs: they compare nf_tables answers, and enforcement refuses features (ct, nat, ...) on purpose.
    /// </param>
    /// <param name="arguments">more bpfilterd arguments (e.g. --placement bpf-only)</param>
    public static DaemonProcess Start(NetNs ns, TimeSpan? startTimeout = null, bool enforce = false, IReadOnlyList<string>? arguments = null) =>
        new(ns, ownsNamespace: false, enforce, socketMode: null, startTimeout, null, arguments);

    /// <summary>An enforcing bpfilterd in a namespace of its own, with more arguments (e.g. --placement bpf-only).</summary>
    public static DaemonProcess Enforcing(IReadOnlyList<string> arguments) =>
        new(new NetNs(), ownsNamespace: true, enforce: true, socketMode: null, null, null, arguments);

    DaemonProcess(NetNs ns, bool ownsNamespace, bool enforce, string? socketMode, TimeSpan? startTimeout, IReadOnlyList<string>? wrapper,
        IReadOnlyList<string>? arguments = null)
    {
        _wrapper = wrapper ?? [];
        Ns = ns;
        _ownsNamespace = ownsNamespace;
        _startTimeout = startTimeout ?? TimeSpan.FromSeconds(30);
        try
        {
            Dir = new TempSocketDir();
            Command = RepoPaths.DaemonCommand ?? throw new InvalidOperationException(RepoPaths.MissingReason());
            // the saved state stays in this daemon's private directory (kept across Restart): a later namespace
            // that happens to get the same inode must not restore it
            _arguments = ["--socket", SocketPath, "--state-dir", Dir.Path];
            if (socketMode != null) _arguments.AddRange(["--socket-mode", socketMode]);
            if (!enforce) _arguments.Add("--no-enforce");
            if (arguments != null) _arguments.AddRange(arguments);
            Launch();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The arguments bpfilterd was started with (after <see cref="Command"/>).</summary>
    public IReadOnlyList<string> Arguments => _arguments;

    void Launch()
    {
        // sh execs ip, which execs bpfilterd: one pid, its output appended to LogPath
        var psi = new ProcessStartInfo("sh")
        {
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in ((string[])["-c", "exec \"$@\" >>\"$0\" 2>&1", LogPath, "ip", "netns", "exec", Ns.Name, .. _wrapper, .. Command])
                 .Concat(_arguments)) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        psi.Environment["DOTNET_TieredPGO"] = "0";
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start bpfilterd");
        _process = p;
        // what bpfilterd logged before it listened (restore, adoption) is in the file once a client connects
        WaitForSocket(p);
    }

    /// <summary>Ready means a client can connect, not only that the socket file exists.</summary>
    void WaitForSocket(Process p)
    {
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < _startTimeout)
        {
            if (p.HasExited)
                throw new InvalidOperationException($"bpfilterd exited with {p.ExitCode} before listening:\n{Log}");
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
        throw new TimeoutException($"bpfilterd did not listen on {SocketPath} within {_startTimeout.TotalSeconds}s:\n{Log}");
    }

    /// <summary>bfnft ARGS from the daemon's namespace, optionally under setpriv credentials.</summary>
    public ProcessResult Bfnft(IEnumerable<string> args, string? stdin = null, string[]? setpriv = null) =>
        setpriv == null
            ? Ns.Exec(RepoPaths.Bfnft, args, stdin, env: Env)
            : Ns.Exec("setpriv", [.. setpriv, RepoPaths.Bfnft, .. args], stdin, env: Env);

    /// <summary>Sends <paramref name="signal"/> to bpfilterd without waiting.</summary>
    public void Signal(int signal)
    {
        if (_process is { HasExited: false } p)
            ProcessRunner.Check("kill", $"-{signal}", p.Id.ToString());
    }

    /// <summary>SIGKILL (no chance to clean up) and wait; returns the exit code.</summary>
    public int Kill()
    {
        var p = _process ?? throw new InvalidOperationException("bpfilterd is not running");
        if (!p.HasExited)
        {
            // a daemon told to die by itself (a test fault) may be gone between the check and the signal
            try { Signal(SIGKILL); }
            catch (InvalidOperationException) when (p.WaitForExit(5_000)) { }
            if (!p.WaitForExit(15_000)) throw new TimeoutException($"bpfilterd (pid {p.Id}) survived SIGKILL");
        }
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>SIGTERM and wait (SIGKILL after 15 s); returns the exit code.</summary>
    public int Terminate()
    {
        var p = _process ?? throw new InvalidOperationException("bpfilterd is not running");
        if (!p.HasExited)
        {
            try { Signal(SIGTERM); } catch (InvalidOperationException) { /* it exited meanwhile */ }
            if (!p.WaitForExit(15_000)) p.Kill(entireProcessTree: true);
        }
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>
    /// Starts bpfilterd again with the same arguments, namespace and socket, after the previous one
    /// exited (Kill or Terminate first); waits until it listens.
    /// </summary>
    public void Restart()
    {
        if (_process is { HasExited: false }) throw new InvalidOperationException("bpfilterd is still running: Kill or Terminate it first");
        File.AppendAllText(LogPath, "--- bpfilterd restarted\n");
        _process?.Dispose();
        Launch();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (_process != null)
            {
                Terminate();
                _process.Dispose();
            }
        }
        catch (Exception) { /* cleanup must go on */ }
        // Dir is null when making it threw: the namespace goes all the same
        _finalLog = Dir == null ? "" : ReadLog();
        Dir?.Dispose();
        if (_ownsNamespace) Ns.Dispose();
    }
}
