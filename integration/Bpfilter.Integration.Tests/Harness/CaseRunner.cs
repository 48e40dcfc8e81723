using System.Text;

namespace Bpfilter.Integration.Tests.Harness;

/// <summary>The outcome of one case: problems with the corpus itself, and steps whose outputs differ.</summary>
public sealed record CaseReport(string Case, IReadOnlyList<string> CorpusErrors, IReadOnlyList<string> Mismatches)
{
    public bool Ok => CorpusErrors.Count == 0 && Mismatches.Count == 0;

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var e in CorpusErrors) sb.Append("corpus: ").Append(e).Append('\n');
        foreach (var m in Mismatches) sb.Append(m).Append('\n');
        return sb.ToString();
    }
}

/// <summary>
/// Runs a case step by step on a reference target (the kernel) and a candidate target, and compares
/// exit status, stdout and stderr of every step. The kernel's output is the truth; a step marked
/// @daemon-differs is checked against its written expectation instead, when the candidate is the daemon.
/// </summary>
public static class CaseRunner
{
    public static CaseReport Run(ProtocolCase c, INftTarget reference, INftTarget candidate, bool candidateIsDaemon)
    {
        var corpus = new List<string>();
        var mismatches = new List<string>();
        // BFNT_TRANSCRIPT=<dir> keeps what both sides printed, one file per case, for reading and debugging.
        var transcriptDir = Environment.GetEnvironmentVariable("BFNT_TRANSCRIPT");
        var transcript = new StringBuilder();
        foreach (var step in c.Steps)
        {
            var where = $"{c.Name}.nft:{step.Line}: {step.CommandText}";
            var k = reference.Nft(step.Args, step.Stdin);
            transcript.Append("### ").Append(where).Append('\n').Append(step.Stdin)
                .Append("## ").Append(reference.Label).Append('\n').Append(Render(k.Exit, WithPidPlaceholder(k.Stdout, k.Pid), k.Stderr));
            if (step.ExpectFailure is bool mustFail && (mustFail ? k.Exit == 0 : k.Exit != 0))
                corpus.Add($"{where}: the kernel {(mustFail ? "accepted" : "refused")} it, " +
                           $"the case says it must {(mustFail ? "fail (`! nft`)" : "succeed")}:\n{k}");

            var d = candidate.Nft(step.Args, step.Stdin);
            string expected, label;
            if (candidateIsDaemon && step.Daemon is { } exp)
            {
                expected = Render(exp.ExitCode, exp.Stdout, exp.Stderr);
                label = $"expected from the daemon ({exp.Reason})";
            }
            else
            {
                expected = Render(k.Exit, WithPidPlaceholder(k.Stdout, k.Pid), k.Stderr);
                label = reference.Label;
            }
            var actual = Render(d.Exit, WithPidPlaceholder(d.Stdout, d.Pid), d.Stderr);
            transcript.Append("## ").Append(candidate.Label).Append('\n').Append(actual);
            if (expected != actual)
                mismatches.Add($"{where}\n{UnifiedDiff.Create(expected, actual, label, candidate.Label)}");

            var health = candidate.Health();
            if (health.Length > 0)
            {
                mismatches.Add($"{where}: {health}");
                break;
            }
        }
        if (!string.IsNullOrEmpty(transcriptDir))
        {
            Directory.CreateDirectory(transcriptDir);
            File.WriteAllText(Path.Combine(transcriptDir, c.Name + ".out"), transcript.ToString());
        }
        return new CaseReport(c.Name, corpus, mismatches);
    }

    /// <summary>
    /// `nft --echo` prints "# new generation N by process PID (nft)" with the pid of the nft that made
    /// the change: the one thing that cannot be equal between two runs. It is checked, not hidden:
    /// only the exact pid of this very nft is replaced by a placeholder, so a wrong pid still differs.
    /// </summary>
    public static string WithPidPlaceholder(string stdout, int pid) =>
        pid == 0 ? stdout : stdout.Replace($" by process {pid} (nft)", " by process <this nft> (nft)");

    /// <summary>One comparable text per step: the exit status and both streams, each under a marker line.</summary>
    public static string Render(int exit, string stdout, string stderr)
    {
        var sb = new StringBuilder();
        sb.Append("exit ").Append(exit).Append('\n');
        sb.Append("[stdout]\n").Append(stdout);
        if (stdout.Length > 0 && !stdout.EndsWith('\n')) sb.Append("\\ no newline\n");
        sb.Append("[stderr]\n").Append(stderr);
        if (stderr.Length > 0 && !stderr.EndsWith('\n')) sb.Append("\\ no newline\n");
        return sb.ToString();
    }
}
