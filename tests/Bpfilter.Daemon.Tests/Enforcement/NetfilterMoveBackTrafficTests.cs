namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// An inet input chain a commit moves to the kernel's nf_tables (`reject`, which BPF cannot run at an ip/inet hook) and
/// back (the rule deleted), compared with the kernel (6.18), where nothing moves. Back in BPF its BPF_NETFILTER links
/// (ipv4 and ipv6) take priority -1, next to the kernel copy's 0, which that copy holds until the kernel commit removes it
/// (a link cannot share it: EBUSY). Before branch `nfback` the chain stayed in the kernel for good.
/// </summary>
public sealed class NetfilterMoveBackTrafficTests
{
    /// <summary>Port 12 passes and is counted, port 13 is dropped; chain `after` (priority 10) counts what passed.</summary>
    const string Inet = """
        table inet t {
            counter named {
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 12 counter
                udp dport 12 counter name "named"
                udp dport 13 counter drop
            }
            chain after {
                type filter hook input priority 10; policy accept;
                udp dport { 12, 13 } counter
            }
        }
        """;

    [Fact]
    public void AnInetInputChainMovesBackToBpfWithTheKernelsVerdictsAndCounts()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Inet);
        Assert.Contains("table inet t chain in: BPF", s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Send(13, "127.0.0.2");

        s.Apply("add rule inet t in udp dport 14 reject");
        Assert.Contains("table inet t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(12, "127.0.0.2");
        s.Send(13, "127.0.0.2", "127.0.0.3");
        var moved = s.SameListing("table inet t");
        Assert.Contains("udp dport 12 counter packets 3", moved);
        Assert.Contains("udp dport 13 counter packets 3", moved);

        s.Apply($"delete rule inet t in handle {PlacementMoveCounterTrafficTests.Handle(s, "reject", "inet")}");
        var explain = s.Rig.Explain();
        Assert.True(explain.Contains("table inet t chain in: BPF"), explain + s.Rig.Daemon.Log);
        // the priority as the kernel holds each link (bpf_link_info's netfilter member)
        foreach (var family in new[] { "ipv4", "ipv6" })
            Assert.True(explain.Contains($"netfilter {family} input priority 0, link at priority -1"), explain);
        var back = s.SameListing("table inet t");
        Assert.Contains("udp dport 12 counter packets 3", back);

        // verdicts and counts go on as the kernel's: port 13 dropped before `after` sees it
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Send(13, "127.0.0.2", "127.0.0.4");
        back = s.SameListing("table inet t");
        Assert.Contains("udp dport 12 counter packets 5", back);
        Assert.Contains("udp dport 13 counter packets 5", back);
        Assert.Contains("udp dport { 12, 13 } counter packets 5", back);

        // and to the kernel once more: its link goes, the kernel's copy takes priority 0 again
        s.Apply("add rule inet t in udp dport 14 reject");
        Assert.Contains("table inet t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(12, "127.0.0.2");
        Assert.Contains("udp dport 12 counter packets 6", s.SameListing("table inet t"));
    }
}
