using System.Diagnostics;
using System.Net.Sockets;

namespace Bpfilter.Daemon.Tests.Packaging;

/// <summary>
/// Builds the .deb once with scripts/build-deb.sh (which reuses out/publish/bpfilterd when it is
/// current, else publishes it with NativeAOT) and extracts it into a scratch root with dpkg-deb -x.
/// Nothing is installed on the machine running the tests.
/// </summary>
public sealed class DebianPackage : IDisposable
{
    public string Deb { get; }
    /// <summary>The package extracted with dpkg-deb -x.</summary>
    public string Root { get; }
    /// <summary>The control area extracted with dpkg-deb -e.</summary>
    public string Control { get; }
    readonly string _dir = Path.Combine(Path.GetTempPath(), "bpfd-deb-" + Guid.NewGuid().ToString("N")[..12]);

    public DebianPackage()
    {
        Directory.CreateDirectory(_dir);
        var r = ProcessRunner.Run(Path.Combine(RepoPaths.RepoRoot, "scripts", "build-deb.sh"), [Path.Combine(_dir, "deb")],
            timeout: TimeSpan.FromMinutes(20));
        if (r.Exit != 0) throw new InvalidOperationException($"scripts/build-deb.sh failed: {r}");
        Deb = r.Stdout.Trim().Split('\n')[^1];
        if (!File.Exists(Deb)) throw new InvalidOperationException($"scripts/build-deb.sh printed no .deb: {r}");
        Root = Path.Combine(_dir, "root");
        Control = Path.Combine(_dir, "control");
        ProcessRunner.Check("dpkg-deb", "-x", Deb, Root);
        ProcessRunner.Check("dpkg-deb", "-e", Deb, Control);
    }

    public string Path_(string relative) => Path.Combine(Root, relative.TrimStart('/'));

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DebianPackageTests(DebianPackage pkg) : IClassFixture<DebianPackage>
{
    const string LibDir = "/usr/lib/x86_64-linux-gnu/bfnft";

    static string Run(string file, params string[] args)
    {
        var r = ProcessRunner.Run(file, args);
        Assert.True(r.Exit == 0, $"{file} {string.Join(' ', args)}: {r}");
        return r.Stdout;
    }

    /// <summary>dpkg-deb -c: every installed file, its mode and owner.</summary>
    [Fact]
    public void ContentsAreTheInstalledLayout()
    {
        var entries = Run("dpkg-deb", "-c", pkg.Deb).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f[0][0] == '-')
            .ToDictionary(f => f[^1].TrimStart('.'), f => (Mode: f[0], Owner: f[1]));
        var expected = new Dictionary<string, string>
        {
            ["/usr/sbin/bpfilterd"] = "-rwxr-xr-x",
            ["/usr/sbin/bfnft"] = "-rwxr-xr-x",
            [$"{LibDir}/libbfnft.so"] = "-rw-r--r--",
            ["/lib/systemd/system/bpfilterd.service"] = "-rw-r--r--",
            ["/lib/systemd/system/bfnft-load.service"] = "-rw-r--r--",
            ["/etc/default/bpfilterd"] = "-rw-r--r--",
            ["/usr/share/man/man8/bpfilterd.8.gz"] = "-rw-r--r--",
            ["/usr/share/man/man8/bfnft.8.gz"] = "-rw-r--r--",
            ["/usr/share/doc/bpfilter-nft/README.md"] = "-rw-r--r--",
            ["/usr/share/doc/bpfilter-nft/copyright"] = "-rw-r--r--",
            ["/usr/share/doc/bpfilter-nft/changelog.gz"] = "-rw-r--r--",
        };
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), entries.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, mode) in expected)
        {
            Assert.True(entries[path].Mode == mode, $"{path}: {entries[path].Mode}, expected {mode}");
            Assert.Equal("root/root", entries[path].Owner);
        }
        // One executable: no managed assemblies, no runtime next to it.
        Assert.DoesNotContain(entries.Keys, k => k.EndsWith(".dll", StringComparison.Ordinal) || k.EndsWith(".dbg", StringComparison.Ordinal));
    }

    [Fact]
    public void ControlFieldsNameTheRuntimeDependencies()
    {
        string Field(string name) => Run("dpkg-deb", "-f", pkg.Deb, name).Trim();
        Assert.Equal("bpfilter-nft", Field("Package"));
        Assert.Equal("amd64", Field("Architecture"));
        Assert.Matches(@"^\d+\.\d+\.\d+~git\d+\.[0-9a-f]+$", Field("Version"));
        var depends = Field("Depends").Split(',', StringSplitOptions.TrimEntries);
        Assert.Contains("libbpf1 (>= 1:1.4)", depends);
        Assert.Contains("nftables", depends);
        Assert.Contains(depends, d => d.StartsWith("libc6 (>= ", StringComparison.Ordinal));
        Assert.DoesNotContain(depends, d => d.Contains("dotnet", StringComparison.Ordinal));
        Assert.True(int.Parse(Field("Installed-Size")) > 1000);

        var info = Run("dpkg-deb", "-I", pkg.Deb);
        foreach (var member in new[] { "control", "conffiles", "md5sums", "postinst", "prerm", "postrm" })
            Assert.Matches($@"\s{member}\s*$|\s{member}\s", info);
        Assert.Equal(["/etc/default/bpfilterd"], File.ReadAllLines(Path.Combine(pkg.Control, "conffiles")));
    }

    /// <summary>The packaged binary is native (no dotnet, no .dll) and its libc floor matches Depends.</summary>
    [Fact]
    public void DaemonBinaryRunsWithoutTheDotnetRuntime()
    {
        var bin = pkg.Path_("/usr/sbin/bpfilterd");
        var head = new byte[4];
        using (var f = File.OpenRead(bin)) f.ReadExactly(head);
        Assert.Equal([0x7f, (byte)'E', (byte)'L', (byte)'F'], head);
        var help = ProcessRunner.Run(bin, ["--help"], env: new Dictionary<string, string> { ["DOTNET_ROOT"] = "/nonexistent", ["PATH"] = "/usr/bin:/bin" });
        Assert.True(help.Exit == 0, help.ToString());
        Assert.Contains("usage: bpfilterd", help.Stderr);
        var needed = Run("objdump", "-p", bin).Split('\n').Where(l => l.TrimStart().StartsWith("NEEDED", StringComparison.Ordinal))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]).ToList();
        Assert.All(needed, n => Assert.Matches(@"^(libc|libm|libdl|libpthread|librt|ld-linux-x86-64)\.so", n));
        var glibc = Run("objdump", "-T", bin).Split('\n').SelectMany(l => l.Split(' ', '(', ')'))
            .Where(w => w.StartsWith("GLIBC_2.", StringComparison.Ordinal)).Select(w => Version.Parse(w[6..])).Max()!;
        var floor = Version.Parse(System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Path.Combine(pkg.Control, "control")),
            @"libc6 \(>= ([0-9.]+)\)").Groups[1].Value);
        Assert.True(glibc <= floor, $"the binary needs GLIBC_{glibc}, Depends says libc6 (>= {floor})");
    }

    [Fact]
    public void ManPagesRender()
    {
        foreach (var page in new[] { "bpfilterd", "bfnft" })
        {
            var r = ProcessRunner.Run("man", ["--warnings", "-l", pkg.Path_($"/usr/share/man/man8/{page}.8.gz")],
                env: new Dictionary<string, string> { ["MANPAGER"] = "cat", ["MANWIDTH"] = "80" });
            Assert.True(r.Exit == 0 && r.Stderr.Length == 0, $"man -l {page}.8.gz: {r}");
            Assert.Contains($"{page.ToUpperInvariant()}(8)", r.Stdout);
            Assert.Contains("SYNOPSIS", r.Stdout);
        }
    }

    /// <summary>systemd-analyze verify in the extracted root: the units find /usr/sbin/bpfilterd and bfnft there.</summary>
    [Fact]
    public void UnitsVerifyInTheExtractedRoot()
    {
        var units = new[] { "bpfilterd.service", "bfnft-load.service" }.Select(u => pkg.Path_($"/lib/systemd/system/{u}")).ToArray();
        var psi = new ProcessStartInfo("/usr/bin/systemd-analyze") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["verify", "--man=no", $"--root={pkg.Root}", .. units]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = (p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd()).Trim();
        Assert.True(p.WaitForExit(60_000), "systemd-analyze verify hung");
        Assert.True(p.ExitCode == 0 && output.Length == 0, $"systemd-analyze verify exit {p.ExitCode}:\n{output}");

        var daemon = File.ReadAllText(units[0]);
        Assert.Contains("EnvironmentFile=-/etc/default/bpfilterd", daemon);
        Assert.Contains("ExecStart=/usr/sbin/bpfilterd --socket /run/bpfilter/bpfilterd.sock --state-dir /var/lib/bpfilter $BPFILTERD_OPTS", daemon);
        Assert.Matches("(?m)^BPFILTERD_OPTS=", File.ReadAllText(pkg.Path_("/etc/default/bpfilterd")));
    }

    /// <summary>
    /// The installed bfnft names the installed interposer and the default socket; the extracted
    /// wrapper, interposer and daemon together serve a real nft (daemon with --no-enforce, in a namespace).
    /// </summary>
    [Fact]
    public async Task ExtractedBfnftAndDaemonServeNft()
    {
        var wrapper = pkg.Path_("/usr/sbin/bfnft");
        var text = File.ReadAllText(wrapper);
        Assert.Contains($"\ninstalled_lib={LibDir}/libbfnft.so\n", text);
        Assert.Contains("/run/bpfilter/bpfilterd.sock", text);
        Assert.Equal(0, ProcessRunner.Run("sh", ["-n", wrapper]).Exit);

        using var ns = new NetNs();
        using var dir = new TempSocketDir();
        var socket = dir.Socket();
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["netns", "exec", ns.Name, pkg.Path_("/usr/sbin/bpfilterd"), "--socket", socket, "--no-enforce"]) psi.ArgumentList.Add(a);
        using var daemon = Process.Start(psi)!;
        var log = daemon.StandardError.ReadToEndAsync();
        try
        {
            var sw = Stopwatch.StartNew();
            while (true)
            {
                Assert.False(daemon.HasExited, $"bpfilterd exited {(daemon.HasExited ? daemon.ExitCode : 0)}");
                try
                {
                    using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    s.Connect(new UnixDomainSocketEndPoint(socket));
                    break;
                }
                catch (SocketException) when (sw.Elapsed < TimeSpan.FromSeconds(30)) { Thread.Sleep(20); }
            }
            var env = new Dictionary<string, string> { ["BFNFT_SOCKET"] = socket, ["BFNFT_LIB"] = pkg.Path_($"{LibDir}/libbfnft.so") };
            var add = ns.Exec(wrapper, ["add", "table", "inet", "pkgtest"], env: env);
            Assert.True(add.Exit == 0, add.ToString());
            var list = ns.Exec(wrapper, ["list", "tables"], env: env);
            Assert.True(list.Exit == 0, list.ToString());
            Assert.Equal("table inet pkgtest", list.Stdout.Trim());
            // The kernel of this namespace saw nothing: the table lives in the daemon.
            Assert.Equal("", ns.Exec("nft", ["list", "tables"]).Stdout.Trim());
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            daemon.WaitForExit();
        }
        Assert.Contains("--no-enforce", await log);
    }

    /// <summary>The maintainer scripts parse, and none of them opens the firewall on stop or removal.</summary>
    [Fact]
    public void MaintainerScriptsFollowTheDebSystemdHelperConventions()
    {
        foreach (var s in new[] { "postinst", "prerm", "postrm" })
        {
            var path = Path.Combine(pkg.Control, s);
            Assert.Equal(0, ProcessRunner.Run("sh", ["-n", path]).Exit);
            Assert.True((File.GetUnixFileMode(path) & UnixFileMode.UserExecute) != 0, $"{s} is not executable");
            Assert.DoesNotContain("flush", File.ReadAllText(path).Split('\n').Where(l => !l.TrimStart().StartsWith('#')).Aggregate("", string.Concat));
        }
        var postinst = File.ReadAllText(Path.Combine(pkg.Control, "postinst"));
        Assert.Contains("deb-systemd-helper enable 'bpfilterd.service'", postinst);
        Assert.Contains("deb-systemd-invoke start 'bpfilterd.service'", postinst);
        Assert.DoesNotContain("enable 'bfnft-load.service'", postinst);
        var prerm = File.ReadAllText(Path.Combine(pkg.Control, "prerm"));
        Assert.Contains("\"$1\" = \"remove\"", prerm);
        Assert.Contains("deb-systemd-invoke stop", prerm);
        var postrm = File.ReadAllText(Path.Combine(pkg.Control, "postrm"));
        Assert.Contains("rm -rf /sys/fs/bpf/bpfilterd", postrm);
        Assert.Contains("rm -rf /var/lib/bpfilter", postrm);
        Assert.Contains("deb-systemd-helper purge", postrm);
    }
}
