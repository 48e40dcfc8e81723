using System.Diagnostics;
using Bpfilter.Daemon.Tests.Server;

namespace Bpfilter.Daemon.Tests.Packaging;

/// <summary>
/// packaging/systemd: both units pass `systemd-analyze verify` without a single warning, and keep the
/// hardening and fail-closed choices their comments document. The binaries are where the .deb will
/// install them (/usr/sbin); verify runs against a scratch root holding stand-ins for them.
/// </summary>
public sealed class SystemdUnitTests : IDisposable
{
    static readonly string[] Units = ["bpfilterd.service", "bfnft-load.service"];
    static string UnitDir => Path.Combine(RepoPaths.RepoRoot, "packaging", "systemd");

    readonly string _root = Path.Combine(Path.GetTempPath(), "bpfd-units-" + Guid.NewGuid().ToString("N")[..12]);

    public SystemdUnitTests()
    {
        var sbin = Directory.CreateDirectory(Path.Combine(_root, "usr", "sbin")).FullName;
        foreach (var exe in new[] { "bpfilterd", "bfnft" })
        {
            var path = Path.Combine(sbin, exe);
            File.WriteAllText(path, "#!/bin/sh\nexit 0\n");
            File.SetUnixFileMode(path, (UnixFileMode)0x1ed); // 0755
        }
        Directory.CreateDirectory(Path.Combine(_root, "etc", "systemd", "system"));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>Copies the units into the scratch root (optionally edited) and verifies them; returns exit code and output.</summary>
    (int Code, string Output) Verify(Func<string, string, string>? edit = null)
    {
        var paths = new List<string>();
        foreach (var unit in Units)
        {
            var text = File.ReadAllText(Path.Combine(UnitDir, unit));
            var path = Path.Combine(_root, "etc", "systemd", "system", unit);
            File.WriteAllText(path, edit?.Invoke(unit, text) ?? text);
            paths.Add(path);
        }
        var psi = new ProcessStartInfo("/usr/bin/systemd-analyze") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["verify", $"--root={_root}", .. paths]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "systemd-analyze verify hung");
        return (p.ExitCode, (stdout.Result + stderr.Result).Trim());
    }

    [Fact]
    public void BothUnitsVerifyWithoutWarnings()
    {
        var (code, output) = Verify();
        Assert.True(code == 0 && output.Length == 0, $"systemd-analyze verify exit {code}:\n{output}");
    }

    /// <summary>The check above would see a mistake: an unknown key and a bad value are reported.</summary>
    [Fact]
    public void VerifyReportsAMistakeInTheUnits()
    {
        var (_, output) = Verify((unit, text) => unit == "bpfilterd.service"
            ? text.Replace("ProtectSystem=strict", "ProtectSystem=strcit\nRestartt=always", StringComparison.Ordinal)
            : text);
        Assert.Contains("strcit", output);
        Assert.Contains("Restartt", output);
    }

    static Dictionary<string, List<string>> Keys(string unit)
    {
        var keys = new Dictionary<string, List<string>>();
        foreach (var raw in File.ReadLines(Path.Combine(UnitDir, unit)))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';' or '[') continue;
            int eq = line.IndexOf('=');
            var (k, v) = (line[..eq], line[(eq + 1)..]);
            if (!keys.TryGetValue(k, out var list)) keys[k] = list = [];
            list.Add(v);
        }
        return keys;
    }

    [Fact]
    public void DaemonKeepsOnlyTheCapabilitiesItUsesOnAReadOnlySystem()
    {
        var k = Keys("bpfilterd.service");
        Assert.Equal(["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"],
            k["CapabilityBoundingSet"].Single().Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        Assert.Equal("strict", k["ProtectSystem"].Single());
        Assert.Equal("/sys/fs/bpf", k["ReadWritePaths"].Single());
        Assert.Equal("yes", k["PrivateTmp"].Single());
        Assert.Equal("yes", k["NoNewPrivileges"].Single());
        Assert.Equal("on-failure", k["Restart"].Single());
        Assert.Equal("bpfilter", k["StateDirectory"].Single());
        Assert.Equal("bpfilter", k["RuntimeDirectory"].Single());
        Assert.Equal("notify", k["Type"].Single());
        Assert.StartsWith("/usr/sbin/bpfilterd --socket /run/bpfilter/bpfilterd.sock", k["ExecStart"].Single());
    }

    /// <summary>Stopping the loader never flushes: the firewall opens only when the operator flushes it.</summary>
    [Fact]
    public void LoaderLoadsAfterTheDaemonAndFailsClosedOnStop()
    {
        var k = Keys("bfnft-load.service");
        Assert.Equal("/usr/sbin/bfnft -f /etc/nftables.conf", k["ExecStart"].Single());
        Assert.Equal("/usr/sbin/bfnft -f /etc/nftables.conf", k["ExecReload"].Single());
        Assert.False(k.ContainsKey("ExecStop"), "ExecStop would run on every stop; a flush there fails open");
        Assert.Contains("bpfilterd.service", k["After"].Single());
        Assert.Contains("bpfilterd.service", k["Requires"].Single());
        Assert.Equal("BFNFT_SOCKET=/run/bpfilter/bpfilterd.sock", k["Environment"].Single());
    }
}
