using System.Diagnostics;

namespace Bpfilter.Testing;

/// <summary>Pid is the process we started; `ip netns exec`, env and bfnft all exec, so it is nft's own pid.</summary>
public sealed record ProcessResult(int Exit, string Stdout, string Stderr, int Pid = 0)
{
    public override string ToString() => $"exit {Exit}\n--- stdout\n{Stdout}--- stderr\n{Stderr}";
}

/// <summary>Runs a program without a shell, feeding stdin and capturing both streams, under a timeout.</summary>
public static class ProcessRunner
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>A program without a shell, all three streams redirected, in the C locale (messages never depend on the caller's).</summary>
    public static ProcessStartInfo StartInfo(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        return psi;
    }

    public static ProcessResult Run(string file, IEnumerable<string> args, string? stdin = null,
        TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = StartInfo(file, args, env);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        try
        {
            if (stdin != null) p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        catch (IOException) { /* the program exited without reading its input */ }
        var limit = timeout ?? DefaultTimeout;
        if (!p.WaitForExit(limit))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit();
            throw new TimeoutException($"{file} {string.Join(' ', psi.ArgumentList)} did not finish within {limit.TotalSeconds}s\n{outTask.Result}{errTask.Result}");
        }
        p.WaitForExit(); // drains the redirected streams
        return new ProcessResult(p.ExitCode, outTask.Result, errTask.Result, p.Id);
    }

    /// <summary>Runs and throws unless the program succeeds; for setup commands.</summary>
    public static string Check(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.Exit != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }
}
