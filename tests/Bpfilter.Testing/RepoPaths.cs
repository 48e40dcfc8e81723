namespace Bpfilter.Testing;

/// <summary>Finds the repository and the built artifacts the tests drive (bpfilterd, the interposer).</summary>
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

    public static string NftablesDir => Path.Combine(RepoRoot, "patches", "nftables");

    /// <summary>The interposer library bfnft preloads.</summary>
    public static string Library => Path.Combine(NftablesDir, "build", "libbfnft.so");

    /// <summary>
    /// The daemon assembly, run with `dotnet`: $BFNT_DAEMON_DLL, else the copy next to the tests (a
    /// test project that references Bpfilter.Daemon), else the newest of the Release and Debug outputs.
    /// </summary>
    public static string? DaemonDll
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("BFNT_DAEMON_DLL");
            if (!string.IsNullOrEmpty(env)) return File.Exists(env) ? env : null;
            var local = Path.Combine(AppContext.BaseDirectory, "bpfilterd.dll");
            if (File.Exists(local)) return local;
            return new[] { "Release", "Debug" }
                .Select(c => Path.Combine(RepoRoot, "Bpfilter.Daemon", "bin", c, "net10.0", "bpfilterd.dll"))
                .Where(File.Exists)
                .OrderByDescending(File.GetLastWriteTimeUtc)
                .FirstOrDefault();
        }
    }

    /// <summary>
    /// A self-contained bpfilterd executable (the NativeAOT one scripts/publish.sh makes) from
    /// $BFNT_DAEMON_BIN, run instead of `dotnet bpfilterd.dll`; null when the variable is unset.
    /// </summary>
    public static string? DaemonBin
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("BFNT_DAEMON_BIN");
            return string.IsNullOrEmpty(env) ? null : env;
        }
    }

    /// <summary>
    /// The command that runs bpfilterd, before its arguments: [$BFNT_DAEMON_BIN] when set, else
    /// ["dotnet", <see cref="DaemonDll"/>]; null when neither exists.
    /// </summary>
    public static IReadOnlyList<string>? DaemonCommand =>
        DaemonBin is { } bin ? (File.Exists(bin) ? [bin] : null)
        : DaemonDll is { } dll ? ["dotnet", dll] : null;

    /// <summary>
    /// The nft wrapper that preloads the interposer: $BFNT_BFNFT, else build/bfnft (where
    /// `make -C patches/nftables` puts it); check <see cref="MissingReason"/> before relying on it.
    /// </summary>
    public static string Bfnft
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("BFNT_BFNFT");
            return !string.IsNullOrEmpty(env) ? env : Path.Combine(NftablesDir, "build", "bfnft");
        }
    }

    /// <summary><see cref="Bfnft"/>, or an exception saying what is not built.</summary>
    public static string RequireBfnft() =>
        File.Exists(Bfnft) ? Bfnft : throw new InvalidOperationException(MissingReason() is { Length: > 0 } why ? why : $"{Bfnft} does not exist");

    /// <summary>Why the daemon cannot be driven through bfnft, or "" when everything is built.</summary>
    public static string MissingReason()
    {
        if (DaemonBin is { } bin && !File.Exists(bin)) return $"BFNT_DAEMON_BIN={bin} does not exist (scripts/publish.sh)";
        if (DaemonCommand == null) return "bpfilterd is not built (dotnet build Bpfilter.Daemon)";
        if (!File.Exists(Bfnft)) return "bfnft is not built (make -C patches/nftables)";
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("BFNFT_LIB")) && !File.Exists(Library))
            return "the interposer is not built (make -C patches/nftables builds build/libbfnft.so)";
        return "";
    }

    static readonly object BuildLock = new();
    static bool _built;

    /// <summary>Builds the interposer once per test run (make is incremental).</summary>
    public static void BuildInterposer()
    {
        lock (BuildLock)
        {
            if (_built) return;
            var r = ProcessRunner.Run("make", ["-s", "-C", NftablesDir], timeout: TimeSpan.FromMinutes(2));
            if (r.Exit != 0) throw new InvalidOperationException($"make -C patches/nftables failed:\n{r.Stdout}{r.Stderr}");
            _built = true;
        }
    }
}
