namespace Bpfilter.Integration.Tests.Harness;

/// <summary>Finds the repository and the built artifacts the tests drive.</summary>
public static class RepoPaths
{
    static readonly Lazy<string> Root = new(() =>
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Bpfilter.Nft.sln"))) return d.FullName;
        throw new InvalidOperationException($"no Bpfilter.Nft.sln above {AppContext.BaseDirectory}");
    });

    public static string RepoRoot => Root.Value;

    public static string ProtocolCorpus => Path.Combine(RepoRoot, "integration", "corpus", "protocol");

    /// <summary>The daemon assembly, run with `dotnet`; the newest of the Release and Debug outputs.</summary>
    public static string? DaemonDll
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("BFNT_DAEMON_DLL");
            if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
            return new[] { "Release", "Debug" }
                .Select(c => Path.Combine(RepoRoot, "Bpfilter.Daemon", "bin", c, "net10.0", "bpfilterd.dll"))
                .Where(File.Exists)
                .OrderByDescending(File.GetLastWriteTimeUtc)
                .FirstOrDefault();
        }
    }

    /// <summary>The nft wrapper that preloads the interposer (built by `make -C patches/nftables`).</summary>
    public static string? Bfnft
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("BFNT_BFNFT");
            if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
            var candidates = new[]
            {
                Path.Combine(RepoRoot, "patches", "nftables", "bfnft"),
                Path.Combine(RepoRoot, "patches", "nftables", "build", "bfnft"),
            };
            return candidates.FirstOrDefault(File.Exists);
        }
    }
}
