using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Issue 12's acceptance: a chain of 100,000 rules loads through nft -f into bpfilterd and, for UDP datagrams
/// matching its first, a middle, its last and no rule, gives the verdict the kernel gives for the same ruleset
/// (a datagram the chain accepts reaches the closed port: the namespace's Udp NoPorts grows; a dropped one does
/// not), with the same counters. Datagrams go to the namespace's own loopback, crossing the input hook once.
/// </summary>
public sealed partial class HugeChainTests(ITestOutputHelper output)
{
    const int Rules = 100_000;
    /// <summary>Destination ports of the probes: the first rule, the middle one, the last one, no rule.</summary>
    static readonly (int Port, bool Dropped)[] Probes = [(3001, true), (3002, true), (3003, true), (3004, false)];

    /// <summary>
    /// Rules of one shape (`ip saddr . udp dport`, grouped into verdict maps) around a middle rule of another field
    /// order (it ends one run and starts the next), each with a counter.
    /// </summary>
    static string Ruleset()
    {
        var sb = new StringBuilder("table ip huge {\n  chain in {\n    type filter hook input priority 0; policy accept;\n");
        for (int i = 0; i < Rules; i++)
        {
            if (i == 0) sb.Append("    ip saddr 127.0.0.1 udp dport 3001 counter drop\n");
            else if (i == Rules / 2) sb.Append("    udp dport 3002 ip saddr 127.0.0.1 counter drop\n");
            else if (i == Rules - 1) sb.Append("    ip saddr 127.0.0.1 udp dport 3003 counter drop\n");
            else sb.Append($"    ip saddr 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255} udp dport {1024 + i % 60000} counter drop\n");
        }
        return sb.Append("  }\n}\n").ToString();
    }

    /// <summary>Sends one 1-byte datagram per probe; per probe, whether it was dropped (Udp NoPorts did not grow).</summary>
    static bool[] Send(NetNs ns) => Probes.Select(p =>
    {
        var before = NoPorts(ns);
        var r = ns.Exec("bash", ["-c", $"printf x > /dev/udp/127.0.0.1/{p.Port}"]);
        Assert.True(r.Exit == 0, r.Stderr);
        return NoPorts(ns) == before;
    }).ToArray();

    static long NoPorts(NetNs ns)
    {
        var lines = ns.Exec("cat", ["/proc/net/snmp"]).Stdout.Split('\n').Where(l => l.StartsWith("Udp:", StringComparison.Ordinal)).ToList();
        var names = lines[0].Split(' ');
        return long.Parse(lines[1].Split(' ')[Array.IndexOf(names, "NoPorts")]);
    }

    [GeneratedRegex(@"(?:ip saddr 127\.0\.0\.1 udp dport 300[123]|udp dport 300[123] ip saddr 127\.0\.0\.1) counter packets \d+ bytes \d+ drop")]
    private static partial Regex ProbeCounter();

    static string[] Counters(string listing) => ProbeCounter().Matches(listing).Select(m => m.Value).ToArray();

    [Fact]
    public void AHundredThousandRuleChainGivesTheKernelsVerdictsAndCounters()
    {
        var ruleset = Ruleset();
        using var kernel = new NetNs();
        kernel.Ip("link", "set", "lo", "up");
        var load = kernel.Exec("nft", ["-f", "-"], ruleset, timeout: TimeSpan.FromMinutes(5));
        Assert.True(load.Exit == 0, load.Stderr);
        var expected = Send(kernel);
        Assert.Equal(Probes.Select(p => p.Dropped), expected);
        var expectedListing = kernel.Exec("nft", ["list", "ruleset"], timeout: TimeSpan.FromMinutes(5)).Stdout;

        using var daemon = DaemonProcess.Enforcing(["--placement", "bpf-only"]);
        daemon.Ns.Ip("link", "set", "lo", "up");
        var clock = Stopwatch.StartNew();
        var r = daemon.Bfnft(["-f", "-"], ruleset);
        Assert.True(r.Exit == 0, $"nft -f: {r.Stderr}\n{daemon.Log}");
        output.WriteLine($"nft -f of {Rules} rules into bpfilterd: {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(expected, Send(daemon.Ns));
        var listing = daemon.Bfnft(["list", "ruleset"]);
        Assert.True(listing.Exit == 0, listing.Stderr);
        Assert.Equal(3, Counters(expectedListing).Length);
        Assert.All(Counters(expectedListing), c => Assert.EndsWith("counter packets 1 bytes 29 drop", c));
        Assert.Equal(Counters(expectedListing), Counters(listing.Stdout));
        Assert.Equal(expectedListing, listing.Stdout);
    }
}
