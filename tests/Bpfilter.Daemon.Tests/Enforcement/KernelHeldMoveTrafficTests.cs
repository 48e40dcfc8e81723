using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A base chain that a commit moves between BPF and the kernel's nf_tables while the kernel already holds its table (another
/// base chain of the table runs there), compared with the kernel, where nothing moves. A regular chain jumped to from base
/// chains on both sides is counted by both, and the kernel's rules hold only the kernel's part (before branch `objmove`
/// bpfilterd listed `packets 3` where the kernel listed 6). Named objects only BPF used have no kernel copy (the placement
/// gives the kernel only objects its chains name), so they move as in a table the kernel does not hold; a rule of the
/// moved chain moved to the kernel a second time was taken for one the kernel still held (stale kernel handles: before,
/// `packets 0`).
/// </summary>
public sealed class KernelHeldMoveTrafficTests
{
    /// <summary>
    /// `k` (nflog) runs in the kernel all along; `in` runs in BPF (at lo's ingress before `k`) until the move. A 29-byte
    /// datagram to port 12 is counted by `named` and consumed by `q`; the fourth is over 100 bytes and counted by the rule.
    /// </summary>
    const string NamedObjects = """
        table netdev t {
            counter named {
            }
            quota q {
                over 100 bytes
            }
            chain k {
                type filter hook ingress device "lo" priority 10; policy accept;
                udp dport 15 log group 1
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 counter name "named"
                udp dport 12 quota name "q" counter
            }
        }
        """;

    /// <summary>The table, counters and quotas listed alike on both sides.</summary>
    static string Same(PacketPathSetTrafficTests.Sides s)
    {
        foreach (var what in new[] { "counters", "quotas" })
        {
            s.SameOutput("list", what);
        }
        return s.SameListing("table netdev t");
    }

    /// <summary>Both sides load <paramref name="ruleset"/> (`in` in BPF, `k` in the kernel) and count three datagrams to port 12.</summary>
    static void Load(PacketPathSetTrafficTests.Sides s, string ruleset)
    {
        s.Apply(ruleset);
        var explain = s.Rig.Explain();
        Assert.Contains("table netdev t chain in: BPF", explain);
        Assert.Contains("table netdev t chain k: kernel nf_tables", explain);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
    }

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void NamedObjectsOfAKernelHeldTableKeepWhatBpfCounted(string toKernel, string? back)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        Load(s, NamedObjects);
        Assert.Contains("used 87 bytes", Same(s));

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        var moved = Same(s);
        Assert.Contains("packets 3 bytes 87", moved);
        Assert.Contains("used 87 bytes", moved);
        // the fourth datagram is over the quota only when the kernel's copy consumed the first three
        s.Send(12, "127.0.0.2");
        Assert.Contains("quota name \"q\" counter packets 1", Same(s));

        // back to BPF while the kernel holds the table: the objects take what the kernel counted
        PlacementMoveCounterTrafficTests.Back(s, back);
        s.Send(12, "127.0.0.2");
        var spent = Same(s);
        Assert.Contains("packets 5 bytes 145", spent);
        Assert.Contains("quota name \"q\" counter packets 2", spent);

        // and to the kernel once more, while it kept the table: the chain's rules are new there again
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Contains("packets 5 bytes 145", Same(s));
        s.Send(12, "127.0.0.2");
        var again = Same(s);
        Assert.Contains("packets 6 bytes 174", again);
        Assert.Contains("quota name \"q\" counter packets 3", again);
    }

    /// <summary>A named counter reset in BPF goes to the kernel of a held table with what it counted since the reset.</summary>
    [Fact]
    public void ANamedCounterResetInBpfMovesWithWhatItCountedSince()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(NamedObjects);
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.SameOutput("reset", "counters", "table", "netdev", "t");
        s.Send(12, "127.0.0.2");
        s.Apply("add rule netdev t in udp dport 14 log group 1");
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        Assert.Contains("packets 1 bytes 29", Same(s));
        s.Send(12, "127.0.0.2");
        Assert.Contains("packets 2 bytes 58", Same(s));
    }

    /// <summary>
    /// `r` is reached from `in` (BPF until the move) and from `k` (the kernel all along): each datagram to port 12 passes
    /// both base chains, so the kernel counts it twice in r's one counter.
    /// </summary>
    const string SharedRegular = """
        table netdev t {
            chain r {
                udp dport 12 counter
            }
            chain k {
                type filter hook ingress device "lo" priority 10; policy accept;
                udp dport 15 log group 1
                jump r
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                jump r
            }
        }
        """;

    static readonly Regex RCounter = new(@"udp dport 12 counter packets (\d+) bytes (\d+)");

    /// <summary>r's counter, listed alike on both sides.</summary>
    static int Count(PacketPathSetTrafficTests.Sides s)
    {
        var m = RCounter.Match(s.SameListing("table netdev t"));
        Assert.True(m.Success);
        return int.Parse(m.Groups[1].Value);
    }

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void ARegularChainReachedFromBothSidesKeepsBpfsPart(string toKernel, string? back)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        Load(s, SharedRegular);
        Assert.Equal(6, Count(s));

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Equal(6, Count(s));
        s.Send(12, "127.0.0.2");
        Assert.Equal(8, Count(s));

        PlacementMoveCounterTrafficTests.Back(s, back);
        Assert.Equal(8, Count(s));
        s.Send(12, "127.0.0.2");
        Assert.Equal(10, Count(s));

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Equal(10, Count(s));
        s.Send(12, "127.0.0.2");
        Assert.Equal(12, Count(s));
    }

    /// <summary>
    /// The reverse: the kernel's base chain moves to BPF (its nflog rule deleted), so BPF alone counts r, from both parts;
    /// and back to the kernel, both count again, the kernel's rule from 0.
    /// </summary>
    [Fact]
    public void ARegularChainReachedFromBothSidesKeepsTheKernelsPartWhenTheKernelsBaseChainMoves()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        Load(s, SharedRegular);
        Assert.Equal(6, Count(s));
        var log = Regex.Match(s.Kernel.Exec("nft", ["-a", "list", "chain", "netdev", "t", "k"]).Stdout, @"log group 1 # handle (\d+)");
        Assert.True(log.Success);
        s.Apply($"delete rule netdev t k handle {log.Groups[1].Value}");
        Assert.Contains("table netdev t chain k: BPF", s.Rig.Explain());
        Assert.Equal(6, Count(s));
        s.Send(12, "127.0.0.2");
        Assert.Equal(8, Count(s));

        s.Apply("add rule netdev t k udp dport 15 log group 1");
        Assert.Contains("table netdev t chain k: kernel nf_tables", s.Rig.Explain());
        Assert.Equal(8, Count(s));
        s.Send(12, "127.0.0.2");
        Assert.Equal(10, Count(s));
    }

    /// <summary>BPF's part carried into the kernel's listing survives restarts (the state file keeps it).</summary>
    [Fact]
    public void BpfsPartOfARegularChainSurvivesRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(SharedRegular);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        s.Apply("add rule netdev t in udp dport 14 log group 1");
        Assert.Equal(0, s.Rig.Daemon.Terminate());
        s.Rig.Daemon.Restart();
        Assert.Equal(6, Count(s));
        s.Send(12, "127.0.0.2");
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        Assert.Equal(8, Count(s));
        s.Apply(PlacementMoveCounterTrafficTests.BackCommand(s, null));
        s.Send(12, "127.0.0.2");
        Assert.Equal(10, Count(s));
    }
}
