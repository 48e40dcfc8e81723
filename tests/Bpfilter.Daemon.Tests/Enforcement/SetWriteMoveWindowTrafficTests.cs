using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A netdev chain that writes a set from the packet path (`udp dport 9 add @s { udp sport } drop`) moved from the kernel's
/// nf_tables back to BPF (XDP on lo) while a stream of about one datagram a millisecond, each from a source port of its own,
/// goes to the dropped port. In the kernel nothing moves: no datagram reaches the receiver, and the set lists every source
/// port sent. Before branch `setwindow` a chain joining the XDP link BPF already ran on lo was swapped only after the
/// kernel commit (its set's elements were carried around the swap): the old program, without the chain, let datagrams
/// through in between, and their ports were in neither side's set. A chain at a new XDP link was installed early, but its
/// set started from the kernel's elements read before the install: the ports the kernel added from then until the install
/// were missing.
/// </summary>
public sealed partial class SetWriteMoveWindowTrafficTests
{
    const string Table = """
        table netdev t {
            set s { type inet_service; size 65535; flags dynamic; }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 9 add @s { udp sport } drop
                udp dport 14 log group 1
            }
        }
        """;

    /// <summary>
    /// Another chain of lo's ingress that BPF runs all along, writing a set of its own: the moved chain joins its XDP link,
    /// and what the replaced program wrote to set a is carried into the new one around the early swap.
    /// </summary>
    const string Joined = """
        table netdev t {
            set a { type inet_service; size 65535; flags dynamic; }
            chain a {
                type filter hook ingress device "lo" priority -10; policy accept;
                udp dport 9 add @a { udp sport }
            }
        }
        """;

    const int FirstPort = 10000;

    /// <summary>
    /// One datagram to 127.0.0.2 port 9 about every millisecond, the n-th from source port FirstPort + n, until
    /// <paramref name="stop"/> exists (or 40000 were sent); prints how many.
    /// </summary>
    static BackgroundProcess Stream(NetNs ns, string stop) => ns.Start("/usr/bin/python3", ["-c", """
        import os, socket, sys, time
        stop, first = sys.argv[1], int(sys.argv[2])
        n, due = 0, time.monotonic()
        while not os.path.exists(stop) and n < 40000:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", first + n))
            s.sendto(b"x", ("127.0.0.2", 9))
            s.close()
            n += 1
            due += 0.001
            time.sleep(max(0.0, due - time.monotonic()))
        print(n)
        """, stop, FirstPort.ToString()]);

    [GeneratedRegex(@"elements = \{([^}]*)\}")]
    private static partial Regex Elements();

    /// <summary>The ports set s lists, in order.</summary>
    static List<int> Listed(ProcessResult listing)
    {
        Assert.True(listing.Exit == 0, listing.Stderr);
        var m = Elements().Match(listing.Stdout);
        return m.Success ? m.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order().ToList() : [];
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void NoDatagramGetsThroughAndTheSetListsEveryPortWhileTheChainMovesBack(bool joined)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(joined ? Joined + "\n" + Table : Table);
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        var handle = PlacementMoveCounterTrafficTests.Handle(s, "log group 1");

        var r = XdpMoveWindowTrafficTests.StreamDuring([s.Kernel, s.Rig.Daemon.Ns], () => s.Apply($"delete rule netdev t in handle {handle}"), Stream);
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        List<int> Sent(long n) => Enumerable.Range(FirstPort, (int)n).ToList();
        if (joined)
        {
            var (ka, da) = s.Command("list", "set", "netdev", "t", "a");
            Assert.True(Listed(ka).SequenceEqual(Sent(r[0].Sent)) && Listed(da).SequenceEqual(Sent(r[1].Sent)),
                $"set a: kernel sent {r[0].Sent}, listed {Listed(ka).Count}; bpfilterd sent {r[1].Sent}, listed {Listed(da).Count}\n{s.Rig.Daemon.Log}");
        }
        var (k, d) = s.Command("list", "set", "netdev", "t", "s");
        var (kernel, daemon) = (Listed(k), Listed(d));
        var missing = Sent(r[1].Sent).Except(daemon).ToList();
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, listed {kernel.Count}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, " +
            $"listed {daemon.Count}, {missing.Count} sent port(s) not listed ({string.Join(" ", missing.Take(10))}), " +
            $"{daemon.Except(Sent(r[1].Sent)).Count()} listed port(s) not sent";
        Console.WriteLine(report);
        Console.WriteLine(Regex.Match(s.Rig.Daemon.Log, "early install: .*program.*").Value);
        Assert.Contains("early install: 1 program(s) run beside the kernel's copies", s.Rig.Daemon.Log);
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && kernel.SequenceEqual(Sent(r[0].Sent)), report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && daemon.SequenceEqual(Sent(r[1].Sent)), $"{report}\n{s.Rig.Daemon.Log}");
    }

    /// <summary>
    /// The joined move with the kernel commit failing after the early install: the kernel keeps chain `in`, lo's XDP link
    /// runs the replaced program again, and set a, which both it and the early program wrote, lists every port sent (what
    /// the early program wrote is carried back). Then the move goes through.
    /// </summary>
    [Fact]
    public void AKernelCommitFailingAfterTheEarlyInstallCarriesTheSetBack()
    {
        var trigger = Path.Combine(Path.GetTempPath(), $"bfnt-setwindow-fault-{Guid.NewGuid():N}");
        try
        {
            using var rig = new EnforcementRig("--placement", "auto", "--test-fault", $"kernel-commit={trigger}");
            rig.Nft(Joined + "\n" + Table);
            Assert.Contains("table netdev t chain in: kernel nf_tables", rig.Explain());
            var m = Regex.Match(rig.Daemon.Bfnft(["-a", "list", "chain", "netdev", "t", "in"]).Stdout, @"log group 1 # handle (\d+)");
            Assert.True(m.Success);
            File.WriteAllText(trigger, "");

            var r = XdpMoveWindowTrafficTests.StreamDuring([rig.Daemon.Ns],
                () => Assert.NotEqual(0, rig.Nft($"delete rule netdev t in handle {m.Groups[1].Value}", expectSuccess: false).Exit), Stream);
            Assert.True(rig.Daemon.Log.Contains("injected fault at kernel-commit"), rig.Daemon.Log);
            // the joined link ran the new program early
            Assert.Contains("early install: 1 program(s) run beside the kernel's copies", rig.Daemon.Log);
            Assert.Contains("table netdev t chain in: kernel nf_tables", rig.Explain());
            var a = Listed(rig.Daemon.Bfnft(["list", "set", "netdev", "t", "a"]));
            var report = $"sent {r[0].Sent}, received {r[0].Got9}, set a lists {a.Count}";
            Console.WriteLine(report);
            Assert.True(r[0] is { Got9: 0, Got10: 1 } && a.SequenceEqual(Enumerable.Range(FirstPort, (int)r[0].Sent)), $"{report}\n{rig.Daemon.Log}");

            File.Delete(trigger);
            rig.Nft($"delete rule netdev t in handle {m.Groups[1].Value}");
            Assert.Contains("table netdev t chain in: BPF", rig.Explain());
        }
        finally
        {
            File.Delete(trigger);
        }
    }
}
