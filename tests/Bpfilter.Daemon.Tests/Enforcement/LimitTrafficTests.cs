using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// limit on real traffic against the kernel: the same ruleset in a kernel namespace and in bpfilterd
/// (BPF only), the same packets sent back to back, the same counts. The rates refill nothing while the
/// test runs (per minute), so the counts are exact on both sides.
/// </summary>
public sealed class LimitTrafficTests
{
    const string Limits = """
        table ip t {
            limit shared {
                rate 1/minute burst 2 packets
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 limit rate 1/minute burst 5 packets counter accept
                udp dport 9 counter drop
                udp dport 10 limit rate over 100 bytes/minute burst 200 bytes counter drop
                udp dport 10 counter accept
                udp dport { 11, 12 } limit name "shared" counter accept
                udp dport { 11, 12 } counter drop
            }
        }
        """;

    const int N = 20;

    static string Burst(string addr) =>
        $"for i in $(seq {N}); do for p in 9 10 11 12; do printf x > /dev/udp/{addr}/$p; done; done";

    static readonly Regex Counts = new(@"counter packets \d+ bytes \d+");

    [Fact]
    public void LimitsInBpfAcceptAsManyPacketsAsTheKernel()
    {
        // the kernel: packets to its own loopback cross the input hook once each
        using var kernel = new NetNs();
        kernel.Ip("link", "set", "lo", "up");
        var load = kernel.Exec("nft", ["-f", "-"], Limits);
        Assert.True(load.Exit == 0, load.Stderr);
        var sent = kernel.Exec("bash", ["-c", Burst("127.0.0.1")]);
        Assert.True(sent.Exit == 0, sent.Stderr);
        var expected = kernel.Exec("nft", ["list", "ruleset"]).Stdout;

        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(Limits);
        Assert.Contains("table ip t chain in: BPF", rig.Explain());
        sent = rig.Peer.Exec("bash", ["-c", Burst(EnforcementRig.FwAddr)]);
        Assert.True(sent.Exit == 0, sent.Stderr);
        var actual = rig.ListRuleset();

        // 29-byte packets (20 IP + 8 UDP + 1): the burst of 5; over 200 bytes of burst + 100: ten within
        // (180 s of tokens, 17.4 s each), the other ten dropped; two of the shared bucket for ports 11 and 12 together
        Assert.Contains("udp dport 9 limit rate 1/minute counter packets 5 bytes 145 accept", expected);
        Assert.Contains($"udp dport 9 counter packets {N - 5} bytes {(N - 5) * 29} drop", expected);
        Assert.Contains("counter packets 10 bytes 290 accept", expected);
        Assert.Contains("limit name \"shared\" counter packets 2 bytes 58 accept", expected);
        Assert.Equal(Counts.Matches(expected).Select(m => m.Value), Counts.Matches(actual).Select(m => m.Value));
        Assert.Equal(expected, actual);
    }
}
