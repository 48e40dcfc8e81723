namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A rule with several counter expressions, compared with the kernel (6.18): each counter counts the packets that reach
/// it, so one after a statement that can end the rule's evaluation (`quota over`) counts fewer than one before it. With
/// `quota over 100 bytes used 40 bytes` and 29-byte datagrams, the first two of four end at the quota (69, 98 bytes):
/// the kernel lists `counter packets 4 bytes 116 quota over ... counter packets 2 bytes 58`. Before branch
/// `rulecounters` bpfilterd counted a rule's counters in one slot and listed the trailing one as 4 packets too.
/// </summary>
public sealed class RuleCountersTrafficTests
{
    const string Netdev = """
        table netdev t {
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 counter counter
                udp dport 13 counter quota over 100 bytes used 40 bytes counter
                udp dport 13 counter
            }
        }
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EachCounterOfARuleCountsWhatReachesIt(bool inKernel)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(inKernel ? Netdev.Replace("counter\n    }", "counter\n        udp dport 14 log group 1\n    }") : Netdev);
        Assert.Contains(inKernel ? "table netdev t chain in: kernel nf_tables" : "table netdev t chain in: BPF", s.Rig.Explain());
        foreach (var port in new[] { 12, 13 }) s.Send(port, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        var listing = s.SameListing("table netdev t");
        Assert.Contains("udp dport 12 counter packets 4 bytes 116 counter packets 4 bytes 116", listing);
        Assert.Contains("counter packets 4 bytes 116 quota over 100 bytes used 100 bytes counter packets 2 bytes 58", listing);
    }

    /// <summary>The port 13 rule: its counters before and after the quota, as the kernel lists them after <paramref name="sent"/> datagrams (the first two end at the quota).</summary>
    static string Counted(int sent) =>
        $"counter packets {sent} bytes {29 * sent} quota over 100 bytes used 100 bytes counter packets {sent - 2} bytes {29 * (sent - 2)}";

    /// <summary>
    /// Moved to the kernel (a rule BPF cannot run, `log group`) and back, each counter carries its own count either way
    /// (CounterCarry maps them by rule and expression index).
    /// </summary>
    [Fact]
    public void EachCounterOfARuleKeepsItsCountAcrossMoves()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Netdev);
        s.Send(13, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        Assert.Contains(Counted(4), s.SameListing("table netdev t"));

        s.Apply("add rule netdev t in udp dport 14 log group 1");
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        Assert.Contains(Counted(4), s.SameListing("table netdev t"));
        s.Send(13, "127.0.0.2", "127.0.0.3");
        Assert.Contains(Counted(6), s.SameListing("table netdev t"));

        s.Apply($"delete rule netdev t in handle {PlacementMoveCounterTrafficTests.Handle(s, "log group 1")}");
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        Assert.Contains(Counted(6), s.SameListing("table netdev t"));
        s.Send(13, "127.0.0.2");
        Assert.Contains(Counted(7), s.SameListing("table netdev t"));
    }

    /// <summary>A clean restart and a SIGKILL one (state file and pinned maps reopened) keep each counter's own count.</summary>
    [Fact]
    public void EachCounterOfARuleKeepsItsCountAcrossRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Netdev);
        s.Send(13, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        s.AcrossRestarts(
            () =>
            {
                Assert.Contains(Counted(4), s.SameListing("table netdev t"));
                s.Send(13, "127.0.0.2");
                Assert.Contains(Counted(5), s.SameListing("table netdev t"));
            },
            () =>
            {
                s.Send(13, "127.0.0.2");
                Assert.Contains(Counted(6), s.SameListing("table netdev t"));
            });
    }
}
