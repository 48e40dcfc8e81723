using System.Text;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// The unmodified nft, through libbfnft.so and the socket server, against a relay to the
/// kernel's nf_tables: every command must print exactly what nft prints on the kernel.
/// </summary>
public class InterposerTests
{
    [Fact]
    public void EmptyRulesetListsTheSame()
    {
        using var rig = new RelayRig();
        var r = rig.Same("list", "ruleset");
        Assert.Equal("", r.Stdout);
        Assert.Equal(0, r.Exit);
    }

    [Fact]
    public void CommandsErrorsAndHandlesMatchTheKernel()
    {
        using var rig = new RelayRig();
        rig.Same("add", "table", "ip", "t");
        rig.Same("add", "chain", "ip", "t", "c", "{ type filter hook input priority 0; policy accept; }");
        rig.Same("add", "rule", "ip", "t", "c", "ip saddr 10.0.0.0/8 tcp dport { 22, 80 } counter accept");
        // meta iif resolves the interface name through a NETLINK_ROUTE socket the interposer must leave alone.
        rig.Same("add", "rule", "ip", "t", "c", "iif lo accept");
        rig.Same("-e", "-a", "add", "rule", "ip", "t", "c", "udp dport 53 drop");
        var listed = rig.Same("-a", "list", "ruleset");
        Assert.Contains("udp dport 53 drop # handle", listed.Stdout);
        Assert.Contains("iif \"lo\" accept", listed.Stdout);
        rig.Same("-j", "list", "ruleset");
        // Errors come back on the socket after a batch: nft must match them to the command and underline it.
        var err = rig.Same("delete", "table", "ip", "nonexistent");
        Assert.NotEqual(0, err.Exit);
        Assert.Contains("No such file or directory", err.Stderr);
        rig.Same("add", "chain", "ip", "nonexistent", "c");
        rig.Same("-c", "add", "table", "ip", "checked");
        rig.Same("list", "tables");
        rig.Same("delete", "table", "ip", "t");
        rig.Same("list", "ruleset");
    }

    [Fact]
    public void LargeBatchAndMultiDatagramDumpMatchTheKernel()
    {
        using var rig = new RelayRig();
        var script = new StringBuilder("table inet big {\n  set addrs { type ipv4_addr; flags interval; }\n  chain c {\n    type filter hook input priority 0;\n");
        for (int i = 0; i < 3000; i++)
            script.Append($"    ip saddr 10.{i / 250}.{i % 250}.0/24 tcp dport {1000 + i} counter accept comment \"rule {i}\"\n");
        script.Append("  }\n}\n");
        for (int i = 0; i < 2000; i++) script.Append($"add element inet big addrs {{ 198.18.{i / 200}.{i % 200} }}\n");
        rig.SameWithInput(script.ToString(), "-f", "-");
        var listed = rig.Same("-a", "list", "ruleset");
        Assert.Contains("comment \"rule 2999\"", listed.Stdout);
        Assert.True(listed.Stdout.Length > 300_000, $"listing of {listed.Stdout.Length} bytes is too small to need many datagrams");
        rig.Same("list", "set", "inet", "big", "addrs");
        rig.Same("flush", "ruleset");
        rig.Same("list", "ruleset");
    }

    [Fact]
    public void ManyCommandsOnOneSocketFromStdin()
    {
        using var rig = new RelayRig();
        // nft -i keeps one socket for the whole session and reads a command per line.
        var input = "add table ip x\nadd chain ip x y\nlist ruleset\nadd rule ip x y counter\nlist chain ip x y\ndelete table ip nope\nlist tables\n";
        rig.SameWithInput(input, "-i");
    }

    [Fact]
    public void UnreachableDaemonIsReportedByNft()
    {
        RepoPaths.BuildInterposer();
        using var dir = new TempSocketDir();
        var r = ProcessRunner.Run(RepoPaths.Bfnft, ["list", "ruleset"], env: new Dictionary<string, string> { ["BFNFT_SOCKET"] = dir.Socket("absent.sock") });
        Assert.NotEqual(0, r.Exit);
        Assert.Contains($"bfnft: cannot reach bpfilterd at {dir.Socket("absent.sock")}: No such file or directory", r.Stderr);
        Assert.Contains("Unable to initialize Netlink socket", r.Stderr);
    }
}
