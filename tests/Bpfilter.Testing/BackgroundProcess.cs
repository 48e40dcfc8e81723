using System.Diagnostics;
using System.Text;

namespace Bpfilter.Testing;

/// <summary>
/// A program left running while a test does other things (e.g. `nft monitor`): its output is collected
/// as it comes, <see cref="Stop"/> ends it with SIGTERM and returns what it printed.
/// </summary>
public sealed class BackgroundProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _stdout = new(), _stderr = new();

    BackgroundProcess(Process p)
    {
        _process = p;
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_stdout) _stdout.Append(e.Data).Append('\n'); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_stderr) _stderr.Append(e.Data).Append('\n'); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
    }

    public static BackgroundProcess Start(string file, IEnumerable<string> args) =>
        new(Process.Start(ProcessRunner.StartInfo(file, args)) ?? throw new InvalidOperationException($"cannot start {file}"));

    /// <summary>The program's pid (`ip netns exec`, env and bfnft exec, so the last program's own).</summary>
    public int Pid => _process.Id;
    public bool HasExited => _process.HasExited;
    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>SIGTERM, wait for the output to drain (SIGKILL after <paramref name="timeout"/>), and the result.</summary>
    public ProcessResult Stop(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            try { ProcessRunner.Run("kill", ["-TERM", _process.Id.ToString()]); } catch (InvalidOperationException) { }
            if (!_process.WaitForExit(timeout ?? TimeSpan.FromSeconds(10))) _process.Kill(entireProcessTree: true);
        }
        _process.WaitForExit(); // drains the redirected streams
        return new ProcessResult(_process.ExitCode, Stdout, Stderr, _process.Id);
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
