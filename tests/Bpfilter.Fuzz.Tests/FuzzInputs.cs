using Bpfilter.Fuzz;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Bpfilter.Fuzz.Tests;

/// <summary>The inputs the fuzz tests replay: the transcript seeds and every kept crash input (fuzz/regressions/TARGET/).</summary>
public static class FuzzInputs
{
    static string Base => AppContext.BaseDirectory;

    public static IReadOnlyList<Seed> Seeds { get; } = Fuzz.Seeds.FromTranscripts(Path.Combine(Base, "Transcripts")).ToList();

    public static IEnumerable<(string Target, string File)> Regressions()
    {
        var dir = Path.Combine(Base, "regressions");
        if (!Directory.Exists(dir)) yield break;
        foreach (var t in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
            foreach (var f in Directory.GetFiles(t).Order(StringComparer.Ordinal))
                yield return (Path.GetFileName(t), f);
    }
}
