using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A netdev chain moved from the kernel's nf_tables back to BPF (XDP on lo) while datagrams it drops stream in. In the
/// kernel nothing moves: no datagram reaches the receiver and the drop rule counts every one. Before branches `xdpwindow`
/// and `earlyinstall` the new XDP link ran its accept-everything program from the kernel commit (which deleted the
/// kernel's chain) until the BPF swap: datagrams got through, and neither side counted them. XDP runs before the kernel's
/// netdev ingress copy and the rule is `counter drop`: the copy's count stops at the install, so the carry is exact.
/// </summary>
public sealed partial class XdpMoveWindowTrafficTests
{
    const string Ruleset = """
        table netdev t {
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 9 counter drop
                udp dport 14 log group 1
            }
        }
        """;

    [GeneratedRegex(@"udp dport 9 counter packets (\d+) bytes \d+ drop")]
    private static partial Regex DropCount();

    /// <summary>Counts datagrams to 127.0.0.2 ports 9 and 10 until the file `STOP.done` exists; prints both counts.</summary>
    const string Receive = """
        import os, select, socket, sys
        stop = sys.argv[1]
        socks = []
        for port in (9, 10):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.2", port))
            s.setblocking(False)
            socks.append(s)
        open(stop + ".ready", "w").close()
        n = [0, 0]
        while not os.path.exists(stop + ".done"):
            for s in select.select(socks, [], [], 0.05)[0]:
                while True:
                    try:
                        s.recv(64)
                    except BlockingIOError:
                        break
                    n[socks.index(s)] += 1
        print(n[0], n[1])
        """;

    /// <summary>One-byte datagrams to 127.0.0.2 port 9, each from a socket of its own, until <paramref name="stop"/> exists; prints how many.</summary>
    static BackgroundProcess Stream(NetNs ns, string stop) => ns.Start("bash", ["-c",
        $"n=0; while [ ! -e {stop} ]; do printf x > /dev/udp/127.0.0.2/9 && n=$((n+1)); done; echo $n"]);

    /// <summary>A receiver and a stream in each namespace while <paramref name="move"/> runs; per namespace, datagrams sent, and received on ports 9 and 10 (one sent to 10 at the end).</summary>
    /// <param name="stream">starts a stream to port 9 in a namespace that ends once the file named exists and prints how many it sent (<see cref="Stream"/> when null)</param>
    internal static List<(long Sent, long Got9, long Got10)> StreamDuring(IReadOnlyList<NetNs> sides, Action move, Func<NetNs, string, BackgroundProcess>? stream = null)
    {
        var stop = Path.Combine(Path.GetTempPath(), $"bfnt-xdpwindow-{Guid.NewGuid():N}");
        var stops = sides.Select((_, i) => $"{stop}-{i}").ToList();
        var receivers = sides.Select((ns, i) => ns.Start("/usr/bin/python3", ["-c", Receive, stops[i]])).ToList();
        var streams = new List<BackgroundProcess>();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!stops.All(s => File.Exists(s + ".ready")) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            Assert.True(stops.All(s => File.Exists(s + ".ready")), string.Join("\n", receivers.Select(r => r.Stderr)));
            streams.AddRange(sides.Select(ns => (stream ?? Stream)(ns, stop)));
            try
            {
                Thread.Sleep(300);
                move();
                Thread.Sleep(300);
            }
            finally
            {
                File.WriteAllText(stop, "");
            }
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (!streams.All(p => p.HasExited) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            var sent = streams.Select(p => p.Stop()).ToList();
            Assert.True(sent.All(r => r.Exit == 0), string.Join(" ", sent.Select(r => r.Stderr)));
            // the receivers were up all along: a datagram no rule drops reaches them
            foreach (var ns in sides) Assert.Equal(0, ns.Exec("bash", ["-c", "printf x > /dev/udp/127.0.0.2/10"]).Exit);
            Thread.Sleep(200);
            foreach (var s in stops) File.WriteAllText(s + ".done", "");
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (!receivers.All(p => p.HasExited) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            var got = receivers.Select(p => p.Stop()).ToList();
            Assert.True(got.All(r => r.Exit == 0), string.Join(" ", got.Select(r => r.Stderr)));
            return sent.Zip(got, (s, g) =>
            {
                var n = g.Stdout.Trim().Split(' ');
                return (long.Parse(s.Stdout.Trim()), long.Parse(n[0]), long.Parse(n[1]));
            }).ToList();
        }
        finally
        {
            foreach (var p in streams.Concat(receivers)) p.Dispose();
            foreach (var f in stops.SelectMany(s => new[] { s, s + ".ready", s + ".done" }).Append(stop)) File.Delete(f);
        }
    }

    /// <summary>How far bpfilterd's count may be from what was sent (equal in every run so far; before the early install, 1066 of 12912 were lost).</summary>
    internal const long Slack = 20;

    internal static long Counted(ProcessResult listing, Regex? count = null)
    {
        Assert.True(listing.Exit == 0, listing.Stderr);
        var m = (count ?? DropCount()).Match(listing.Stdout);
        Assert.True(m.Success, listing.Stdout);
        return long.Parse(m.Groups[1].Value);
    }

    [Fact]
    public void NoDatagramGetsThroughWhileTheChainMovesBackToXdp()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Ruleset);
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        var handle = PlacementMoveCounterTrafficTests.Handle(s, "log group 1");

        var r = StreamDuring([s.Kernel, s.Rig.Daemon.Ns], () => s.Apply($"delete rule netdev t in handle {handle}"));
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        var (k, d) = s.Command("list", "table", "netdev", "t");
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, counted {Counted(k)}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, counted {Counted(d)}";
        Console.WriteLine(report);
        Assert.Equal((1, 0, 0L), MoveWindowTrafficTests.EarlyBound(s.Rig.Daemon.Log));
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && Counted(k) == r[0].Sent, report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && Math.Abs(Counted(d) - r[1].Sent) <= Slack, $"{report}\n{s.Rig.Daemon.Log}");
    }

    /// <summary>
    /// The same chain beside another of lo's ingress (priority -10) that BPF runs all along: moving back, it joins the XDP
    /// link BPF already has on lo, whose program was swapped only after the kernel commit (before branch `earlyinstall`
    /// the old program, without the chain, ran in between: datagrams got through); the other chain counts on.
    /// </summary>
    [Fact]
    public void NoDatagramGetsThroughWhileTheChainJoinsTheDevicesXdpLink()
    {
        const string joined = """
            table netdev t {
                chain a {
                    type filter hook ingress device "lo" priority -10; policy accept;
                    udp dport 9 counter
                }
            }
            """;
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(joined + "\n" + Ruleset);
        var explain = s.Rig.Explain();
        Assert.True(explain.Contains("table netdev t chain a: BPF") && explain.Contains("table netdev t chain in: kernel nf_tables"), explain);
        var handle = PlacementMoveCounterTrafficTests.Handle(s, "log group 1");

        var r = StreamDuring([s.Kernel, s.Rig.Daemon.Ns], () => s.Apply($"delete rule netdev t in handle {handle}"));
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        var (k, d) = s.Command("list", "table", "netdev", "t");
        var (ka, da) = (Counted(k, PassCount()), Counted(d, PassCount()));
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, counted {Counted(k)} (chain a {ka}); " +
            $"bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, counted {Counted(d)} (chain a {da})";
        Console.WriteLine(report);
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && Counted(k) == r[0].Sent && ka == r[0].Sent, report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && Math.Abs(Counted(d) - r[1].Sent) <= Slack && Math.Abs(da - r[1].Sent) <= Slack,
            $"{report}\n{s.Rig.Daemon.Log}");
        Assert.Equal((1, 0, 0L), MoveWindowTrafficTests.EarlyBound(s.Rig.Daemon.Log));
    }

    [GeneratedRegex(@"udp dport 9 counter packets (\d+) bytes \d+\s*\n")]
    private static partial Regex PassCount();

    [Fact]
    public void AKernelCommitFailingAfterTheEarlyInstallLeavesTheKernelFiltering() =>
        KernelCommitFailsAfterTheEarlyInstall(Ruleset, "netdev", "log group 1",
            // the link made for the chain is gone with the transaction
            rig => Assert.DoesNotContain("xdp", rig.Daemon.Ns.Exec("ip", ["link", "show", "lo"]).Stdout));

    /// <summary>
    /// Table t's chain `in` of <paramref name="family"/>, held by the kernel for its rule <paramref name="keep"/>, moves back
    /// (that rule deleted) while its `udp dport 9 counter drop` rule drops a stream, and the kernel commit fails after the
    /// early install: the kernel keeps the chain, the links installed go (<paramref name="linksGone"/> checks), and the
    /// kernel's listing counts what they dropped meanwhile, which its copy never saw. Then the move goes through.
    /// </summary>
    internal static void KernelCommitFailsAfterTheEarlyInstall(string ruleset, string family, string keep, Action<EnforcementRig> linksGone)
    {
        var trigger = Path.Combine(Path.GetTempPath(), $"bfnt-earlyinstall-fault-{Guid.NewGuid():N}");
        try
        {
            using var rig = new EnforcementRig("--placement", "auto", "--test-fault", $"kernel-commit={trigger}");
            rig.Nft(ruleset);
            Assert.Contains($"table {family} t chain in: kernel nf_tables", rig.Explain());
            var m = Regex.Match(rig.Daemon.Bfnft(["-a", "list", "chain", family, "t", "in"]).Stdout, $@"{keep} # handle (\d+)");
            Assert.True(m.Success);
            File.WriteAllText(trigger, "");

            var r = StreamDuring([rig.Daemon.Ns], () => Assert.NotEqual(0, rig.Nft($"delete rule {family} t in handle {m.Groups[1].Value}", expectSuccess: false).Exit));
            Assert.True(rig.Daemon.Log.Contains("injected fault at kernel-commit"), rig.Daemon.Log);
            // the programs were installed early
            Assert.Contains("early install: 1 counter(s) carried exactly", rig.Daemon.Log);
            Assert.Contains($"table {family} t chain in: kernel nf_tables", rig.Explain());
            linksGone(rig);
            var counted = Counted(rig.Daemon.Bfnft(["list", "table", family, "t"]));
            var report = $"sent {r[0].Sent}, received {r[0].Got9}, counted {counted}";
            Console.WriteLine(report);
            // BPF counted and dropped what arrived during the overlap: the kernel did not see those, they are carried to its listing
            Assert.True(r[0] is { Got9: 0, Got10: 1 } && Math.Abs(counted - r[0].Sent) <= Slack, $"{report}\n{rig.Daemon.Log}");

            File.Delete(trigger);
            rig.Nft($"delete rule {family} t in handle {m.Groups[1].Value}");
            Assert.Contains($"table {family} t chain in: BPF", rig.Explain());
        }
        finally
        {
            File.Delete(trigger);
        }
    }
}
