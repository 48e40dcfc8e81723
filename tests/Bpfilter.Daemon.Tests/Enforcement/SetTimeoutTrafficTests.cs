using System.Diagnostics;
using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Sets with timeouts against the kernel: the same ruleset and elements in a kernel namespace and in
/// bpfilterd (BPF only), the same packets before and after an element expires, the same counters; the
/// listings equal once the remaining time (`expires`) is checked and taken out: each side's must lie
/// between the timeout minus the time its own listing took after the add (and a jiffy) and the timeout,
/// in whole jiffies.
/// </summary>
public sealed partial class SetTimeoutTrafficTests
{
    const string Ruleset = """
        table ip t {
            set blk {
                type ipv4_addr
                flags timeout
                timeout 1m
            }
            set short {
                type ipv4_addr
                flags timeout
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 ip saddr @blk counter drop
                udp dport 9 counter accept
                udp dport 10 ip saddr @short counter drop
                udp dport 10 counter accept
            }
        }
        """;

    // 60001 ms is 15000 jiffies at HZ 250, the set's timeout: the kernel then lists no own timeout
    static string Elements(string src) => $$"""
        add element ip t blk { {{src}} timeout 30s, 10.9.9.9 timeout 60001ms, 10.9.9.10 }
        add element ip t short { {{src}} timeout 2s, 10.9.9.11 timeout 3ms }
        """;

    static string Burst(string addr) => $"for i in 1 2 3; do for p in 9 10; do printf x > /dev/udp/{addr}/$p; done; done";

    [GeneratedRegex(@" expires [0-9hms]+")]
    private static partial Regex Expires();

    [GeneratedRegex(@"(\d+\.\d+\.\d+\.\d+)(?: timeout ([0-9hms]+))? expires ([0-9hms]+)")]
    private static partial Regex TimedElement();

    /// <summary>nft's duration ("1m2s4ms") in milliseconds.</summary>
    internal static long Ms(string d)
    {
        long total = 0;
        foreach (Match m in Regex.Matches(d, @"(\d+)(ms|h|m|s)"))
            total += long.Parse(m.Groups[1].Value) * m.Groups[2].Value switch { "h" => 3_600_000, "m" => 60_000, "s" => 1000, _ => 1 };
        return total;
    }

    /// <summary>
    /// The listing with every `expires` taken out, after checking each: within the element's timeout (its own,
    /// else the set's 1m) minus the time since the add, and in whole jiffies.
    /// </summary>
    static string Checked(string listing, string src, TimeSpan elapsed)
    {
        var tick = 1000 / Bpfilter.Backend.Libbpf.KernelClock.Hz!.Value;
        foreach (Match m in TimedElement().Matches(listing))
        {
            var timeout = m.Groups[2].Success ? Ms(m.Groups[2].Value) : 60_000;
            var left = Ms(m.Groups[3].Value);
            Assert.InRange(left, timeout - (long)elapsed.TotalMilliseconds - tick, timeout);
            Assert.Equal(0, left % tick);
        }
        return Expires().Replace(listing, " expires X").Replace(src, "SRC");
    }

    static (string Listing, TimeSpan Elapsed) AddAndList(Func<string, ProcessResult> nft, string src)
    {
        var clock = Stopwatch.StartNew();
        var add = nft(Elements(src));
        Assert.True(add.Exit == 0, add.Stderr);
        var list = nft("list table ip t\n");
        Assert.True(list.Exit == 0, list.Stderr);
        return (list.Stdout, clock.Elapsed);
    }

    [Fact]
    public void ElementsExpireInBpfAsInTheKernel()
    {
        using var kernel = new NetNs();
        kernel.Ip("link", "set", "lo", "up");
        Assert.True(kernel.Exec("nft", ["-f", "-"], Ruleset).Exit == 0);
        var (kernelList, kernelElapsed) = AddAndList(s => kernel.Exec("nft", ["-f", "-"], s), "127.0.0.1");
        Assert.True(kernel.Exec("bash", ["-c", Burst("127.0.0.1")]).Exit == 0);

        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(Ruleset);
        Assert.Contains("table ip t chain in: BPF", rig.Explain());
        var (daemonList, daemonElapsed) = AddAndList(s => rig.Daemon.Bfnft(["-f", "-"], s), EnforcementRig.PeerAddr);
        Assert.True(rig.Peer.Exec("bash", ["-c", Burst(EnforcementRig.FwAddr)]).Exit == 0);

        // 3ms is no whole jiffy at HZ 250: that element expired at once on both sides
        Assert.DoesNotContain("10.9.9.11", kernelList);
        Assert.Equal(Checked(kernelList, "127.0.0.1", kernelElapsed), Checked(daemonList, EnforcementRig.PeerAddr, daemonElapsed));

        // the 2 s element expires: port 10 is accepted again on both sides
        Thread.Sleep(2500);
        Assert.True(kernel.Exec("bash", ["-c", Burst("127.0.0.1")]).Exit == 0);
        Assert.True(rig.Peer.Exec("bash", ["-c", Burst(EnforcementRig.FwAddr)]).Exit == 0);
        var expected = kernel.Exec("nft", ["list", "ruleset"]).Stdout;
        var actual = rig.ListRuleset();
        Assert.Contains("udp dport 9 ip saddr @blk counter packets 6 bytes 174 drop", expected);
        Assert.Contains("udp dport 10 ip saddr @short counter packets 3 bytes 87 drop", expected);
        Assert.Contains("udp dport 10 counter packets 3 bytes 87 accept", expected);
        Assert.DoesNotContain("127.0.0.1", expected[expected.IndexOf("set short", StringComparison.Ordinal)..expected.IndexOf("chain in", StringComparison.Ordinal)]);
        Assert.Equal(Expires().Replace(expected, " expires X").Replace("127.0.0.1", "SRC"),
            Expires().Replace(actual, " expires X").Replace(EnforcementRig.PeerAddr, "SRC"));
    }
}
