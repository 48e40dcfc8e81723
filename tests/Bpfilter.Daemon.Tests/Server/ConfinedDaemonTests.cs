namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// bpfilterd confined to exactly the capabilities packaging/systemd/bpfilterd.service leaves it
/// (CapabilityBoundingSet) still serves a root nft and attaches its programs: the unit's list is enough.
/// </summary>
public class ConfinedDaemonTests
{
    static string UnitCapabilities()
    {
        var line = File.ReadLines(Path.Combine(RepoPaths.RepoRoot, "packaging", "systemd", "bpfilterd.service"))
            .Single(l => l.StartsWith("CapabilityBoundingSet=", StringComparison.Ordinal));
        return string.Join(',', line["CapabilityBoundingSet=".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(c => "+" + c["CAP_".Length..].ToLowerInvariant()));
    }

    [Fact]
    public void DaemonWithTheUnitsCapabilitiesServesRootAndAttaches()
    {
        RepoPaths.BuildInterposer();
        string caps = UnitCapabilities();
        Assert.Equal("+net_admin,+bpf,+perfmon", caps);
        using var d = new DaemonProcess(wrapper: ["setpriv", "--bounding-set", "-all," + caps, "--inh-caps", "-all", "--"]);
        Assert.Equal(0, d.Ns.Exec("ip", ["link", "add", "bfc0", "type", "veth", "peer", "name", "bfc1"]).Exit);
        Assert.Equal(0, d.Ns.Exec("ip", ["link", "set", "bfc0", "up"]).Exit);
        var r = d.Bfnft(["-f", "-"], """
            table netdev t {
                chain c { type filter hook ingress device "bfc0" priority 0; policy accept; ip saddr 10.9.9.9 drop; }
            }
            table inet f {
                chain i { type filter hook input priority 0; policy accept; tcp dport 22 counter drop; }
            }
            """);
        Assert.True(r.Exit == 0, $"bfnft -f failed: {r.Stderr}\n{d.Log}");
        var list = d.Bfnft(["list", "ruleset"]);
        Assert.Equal(0, list.Exit);
        Assert.Contains("ip saddr 10.9.9.9 drop", list.Stdout);
        Assert.Contains("tcp dport 22 counter packets 0 bytes 0 drop", list.Stdout);
        Assert.Contains("prog/xdp", d.Ns.Exec("ip", ["link", "show", "bfc0"]).Stdout);
        Assert.DoesNotContain("lacks CAP_NET_ADMIN", d.Log);
    }
}
