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
public sealed record ProtocolCase(string Name, string Path, IReadOnlyList<CaseStep> Steps)
{
    public static IEnumerable<string> AllNames() =>
        Directory.EnumerateFiles(RepoPaths.ProtocolCorpus, "*.nft")
            .Select(f => System.IO.Path.GetFileNameWithoutExtension(f))
            .Order(StringComparer.Ordinal);

    public static ProtocolCase Load(string name)
    {
        var path = System.IO.Path.Combine(RepoPaths.ProtocolCorpus, name + ".nft");
        return new ProtocolCase(name, path, CaseParser.Parse(File.ReadAllText(path), path));
    }
}
