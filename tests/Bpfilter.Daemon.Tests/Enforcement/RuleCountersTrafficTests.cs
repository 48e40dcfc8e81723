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
}
