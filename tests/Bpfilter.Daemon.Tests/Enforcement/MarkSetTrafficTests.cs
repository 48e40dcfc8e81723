using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// `meta mark set` on real traffic against the kernel: a netdev egress chain sets the mark and later rules
/// of the chain match it; the same ruleset in a kernel namespace and in bpfilterd (BPF only, tcx egress),
/// the same probes (each answered by one RST leaving through the chain's device), the same counts.
/// </summary>
public sealed class MarkSetTrafficTests
{
    static string Ruleset(string device) => $$"""
        table netdev t {
            chain e {
                type filter hook egress device "{{device}}" priority 0; policy accept;
                tcp sport 82 meta mark set 0x10 counter
                tcp sport { 82, 83 } meta mark 0x10 counter
                tcp sport { 82, 83 } meta mark != 0x10 counter
            }
        }
        """;

    static readonly Regex Counts = new(@"counter packets \d+ bytes \d+");

    static void Probe(NetNs from, int port)
    {
        var r = from.Exec("timeout", ["6", "bash", "-c", $"exec 3<>/dev/tcp/{EnforcementRig.FwAddr}/{port}"]);
        Assert.True(r.Exit == 1 && r.Stderr.Contains("refused"), $"probe to {port}: exit {r.Exit}: {r.Stderr}");
    }

    [Fact]
    public void AMarkSetAtEgressIsSeenByLaterRulesAsInTheKernel()
    {
        // the kernel: the same two namespaces as the rig, its own nf_tables
        using var fw = new NetNs();
        using var peer = new NetNs();
        var id = Guid.NewGuid().ToString("N")[..6];
        fw.AddVeth("bke" + id, peer, "bkq" + id);
        fw.Ip("addr", "add", EnforcementRig.FwAddr + "/24", "dev", "bke" + id);
        peer.Ip("addr", "add", EnforcementRig.PeerAddr + "/24", "dev", "bkq" + id);
        foreach (var (ns, dev) in new[] { (fw, "bke" + id), (peer, "bkq" + id), (fw, "lo"), (peer, "lo") })
            ns.Ip("link", "set", dev, "up");
        fw.WaitUntilUp("bke" + id);
        peer.WaitUntilUp("bkq" + id);
        var load = fw.Exec("nft", ["-f", "-"], Ruleset("bke" + id));
        Assert.True(load.Exit == 0, load.Stderr);
        foreach (var port in new[] { 82, 82, 83 }) Probe(peer, port);
        var expected = fw.Exec("nft", ["list", "ruleset"]).Stdout;

        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(Ruleset(rig.FwDev));
        Assert.Contains("table netdev t chain e: BPF", rig.Explain());
        foreach (var port in new[] { 82, 82, 83 }) Probe(rig.Peer, port);
        var actual = rig.ListRuleset();

        // 40-byte RSTs (20 IP + 20 TCP) leave through egress, counted from the Ethernet header: 54 bytes
        Assert.Contains("tcp sport 82 meta mark set 0x00000010 counter packets 2 bytes 108", expected);
        Assert.Contains("meta mark 0x00000010 counter packets 2 bytes 108", expected);
        Assert.Contains("meta mark != 0x00000010 counter packets 1 bytes 54", expected);
        Assert.Equal(Counts.Matches(expected).Select(m => m.Value), Counts.Matches(actual).Select(m => m.Value));
    }

    [Fact]
    public void AtNetdevIngressTheChainRunsInTheKernelAndSaysWhy()
    {
        using var rig = new EnforcementRig();
        rig.Nft($$"""
            table netdev t {
                chain i {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
                    tcp dport 82 meta mark set 0x10 counter
                }
            }
            """);
        Assert.Matches(@"table netdev t chain i: kernel nf_tables \(.*meta mark in a chain reached from i, which runs as XDP, before the kernel has an skb to mark", rig.Explain());
        Assert.True(rig.Delivered(82));
        Assert.Contains("meta mark set 0x00000010 counter packets 1 bytes", rig.ListRuleset());
    }
}
