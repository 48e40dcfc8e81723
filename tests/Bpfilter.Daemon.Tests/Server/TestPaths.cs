namespace Bpfilter.Daemon.Tests.Server;

/// <summary>Repository locations the server tests need (the built interposer and daemon).</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRoot();

    static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Bpfilter.Nft.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root (Bpfilter.Nft.sln) not found above " + AppContext.BaseDirectory);
    }

    public static string NftablesDir => Path.Combine(RepoRoot, "patches", "nftables");
    public static string Bfnft => Path.Combine(NftablesDir, "build", "bfnft");
    public static string Library => Path.Combine(NftablesDir, "build", "libbfnft.so");

    static readonly object BuildLock = new();
    static bool _built;

    /// <summary>Builds the interposer once per test run (make is incremental).</summary>
    public static void BuildInterposer()
    {
        lock (BuildLock)
        {
            if (_built) return;
            var r = Proc.Run("make", ["-s", "-C", NftablesDir], timeout: TimeSpan.FromMinutes(2));
            Assert.True(r.Exit == 0, $"make -C patches/nftables failed:\n{r.Stdout}{r.Stderr}");
            _built = true;
        }
    }

    /// <summary>The daemon assembly built next to the tests (the test project references it).</summary>
    public static string DaemonDll => Path.Combine(AppContext.BaseDirectory, "bpfilterd.dll");
}
