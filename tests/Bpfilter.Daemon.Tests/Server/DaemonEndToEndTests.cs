using System.Text;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>nft through bfnft against the real bpfilterd and its nf_tables emulation.</summary>
public class DaemonEndToEndTests
{
    [Fact]
    public void NftAddsAndListsThroughTheDaemon()
    {
        RepoPaths.BuildInterposer();
        using var d = new DaemonProcess("0666");
        var empty = d.Bfnft(["list", "ruleset"]);
        Assert.True(empty.Exit == 0, empty.Stderr + d.Log);
        Assert.Equal("", empty.Stdout);
        var add = d.Bfnft(["add", "table", "ip", "t"]);
        Assert.True(add.Exit == 0, add.Stderr + d.Log);
        Assert.Equal("table ip t {\n}\n", d.Bfnft(["list", "ruleset"]).Stdout);
        // The same user holding CAP_NET_ADMIN is served too.
        var capped = d.Bfnft(["list", "tables"], setpriv: ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps", "+net_admin", "--ambient-caps", "+net_admin"]);
        Assert.Equal("table ip t\n", capped.Stdout);
    }

    [Fact]
    public void ThousandsOfRulesLoadAndListThroughTheDaemon()
    {
        RepoPaths.BuildInterposer();
        using var d = new DaemonProcess();
        var script = new StringBuilder("table ip big {\n  chain c {\n");
        for (int i = 0; i < 3000; i++) script.Append($"    ip saddr 10.{i / 250}.{i % 250}.1 tcp dport {1000 + i} counter accept\n");
        script.Append("  }\n}\n");
        var load = d.Bfnft(["-f", "-"], script.ToString());
        Assert.True(load.Exit == 0, load.Stderr + d.Log);
        var list = d.Bfnft(["list", "ruleset"]);
        Assert.True(list.Exit == 0, list.Stderr + d.Log);
        var rules = list.Stdout.Split('\n').Where(l => l.Contains("tcp dport")).ToArray();
        Assert.Equal(3000, rules.Length);
        Assert.Contains("ip saddr 10.11.249.1 tcp dport 3999 counter packets 0 bytes 0 accept", rules[^1]);
    }
}
