namespace Bpfilter.Integration.Tests.Harness;

/// <summary>What the daemon must print instead of the kernel's output, for a refusal made on purpose.</summary>
public sealed record DaemonExpectation(string Reason, int ExitCode, string Stdout, string Stderr);

/// <summary>One nft invocation of a case. Line is where it starts in the case file.</summary>
/// ExpectFailure: true for `! nft`, false for `nft`, null for `? nft` (kernel outcome depends on its build).
public sealed record CaseStep(int Line, IReadOnlyList<string> Args, string? Stdin, bool? ExpectFailure,
    DaemonExpectation? Daemon)
{
    public string CommandText => "nft " + string.Join(' ', Args.Select(Quote)) + (Stdin != null ? " <<EOF" : "");

    static string Quote(string a) =>
        a.Length > 0 && a.All(c => !char.IsWhiteSpace(c) && c != '"' && c != '\'') ? a : "'" + a.Replace("'", "'\\''") + "'";
}

/// <summary>A protocol case: the steps of one corpus file, run in order in one fresh namespace.</summary>
/// <remarks>
/// A line `@daemon-args ARGS...` before the first step gives bpfilterd more arguments for this case
/// (e.g. `--placement bpf-only` for what that mode refuses on purpose).
/// </remarks>
public sealed record ProtocolCase(string Name, string Path, IReadOnlyList<CaseStep> Steps)
{
    public IReadOnlyList<string> DaemonArguments { get; init; } = [];

    public static IEnumerable<string> AllNames() =>
        Directory.EnumerateFiles(RepoPaths.ProtocolCorpus, "*.nft")
            .Select(f => System.IO.Path.GetFileNameWithoutExtension(f))
            .Order(StringComparer.Ordinal);

    public static ProtocolCase Load(string name)
    {
        var path = System.IO.Path.Combine(RepoPaths.ProtocolCorpus, name + ".nft");
        var lines = File.ReadAllText(path).Replace("\r\n", "\n").Split('\n');
        var args = new List<string>();
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (!line.StartsWith("@daemon-args ", StringComparison.Ordinal)) break;
            args.AddRange(line["@daemon-args ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries));
            lines[i] = "# " + line; // keeps line numbers for the parser's messages
        }
        return new ProtocolCase(name, path, CaseParser.Parse(string.Join('\n', lines), path)) { DaemonArguments = args };
    }
}
