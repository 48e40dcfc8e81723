using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// `log` run in BPF end to end: the statement is lifted, the program writes the event to its ring
/// buffer, bpfilterd formats the nf_log line and writes it to the kernel log. The same rule then runs
/// in the kernel's own nf_tables (plain nft, same namespace, same probe) as the reference: the lines
/// must be identical but for what differs between two connections (source port, IP id).
/// </summary>
[Collection("kernel log")]
public sealed partial class LogStatementTests
{
    [Theory]
    [InlineData("ip", "input", "")]
    [InlineData("inet", "input", " flags all")]
    [InlineData("ip", "prerouting", " level info")]
    [InlineData("netdev", "ingress", "")] // XDP
    public void LogWritesTheKernelsLine(string family, string hook, string options)
    {
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        using var rig = new EnforcementRig();
        if (family == "netdev") hook += $" device \"{rig.FwDev}\"";
        var tag = Guid.NewGuid().ToString("N")[..8];
        string Ruleset(string who) => $$"""
            table {{family}} t {
                chain c {
                    type filter hook {{hook}} priority 0; policy accept;
                    tcp dport 81 log prefix "bft-{{tag}}-{{who}}: "{{options}}
                }
            }
            """;
        rig.Nft(Ruleset("x"));
        var explain = rig.Explain();
        Assert.Contains("table " + family + " t chain c: BPF", explain);
        if (family == "netdev") Assert.Contains("xdp", explain, StringComparison.OrdinalIgnoreCase);
        Assert.True(rig.Delivered(81));
        var fromBpf = kmsg.WaitFor($"bft-{tag}-x: ");
        Assert.Contains($"SRC={EnforcementRig.PeerAddr} DST={EnforcementRig.FwAddr} ", fromBpf.Text);
        Assert.Contains(" PROTO=TCP ", fromBpf.Text);
        Assert.Contains(" DPT=81 ", fromBpf.Text);
        rig.Nft($"delete table {family} t");

        // the reference: the kernel's nft_log for the same rule and the same kind of packet
        var load = rig.Daemon.Ns.Exec("nft", ["-f", "-"], Ruleset("x"));
        Assert.True(load.Exit == 0, load.Stderr);
        Assert.True(rig.Delivered(81));
        var all = kmsg.All($"bft-{tag}-x: ");
        Assert.True(all.Count == 2, string.Join("\n", all.Select(r => r.Text)));
        var fromKernel = all[1];
        Assert.Equal(fromKernel.Level, fromBpf.Level);
        Assert.Equal(Comparable(fromKernel.Text), Comparable(fromBpf.Text));
        rig.Daemon.Ns.Exec("nft", ["delete", "table", family, "t"]);
    }

    /// <summary>Fields two probes of one client differ in: the IP id, the source port, TCP sequence numbers and timestamps.</summary>
    static string Comparable(string line) => Varying().Replace(line, m => m.Groups[1].Value + "*");

    [GeneratedRegex(@"\b(ID=|SPT=|SEQ=|OPT \()[0-9A-Fa-f]+")]
    private static partial Regex Varying();
}

[CollectionDefinition("kernel log", DisableParallelization = true)]
public sealed class KernelLogCollection;
