namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// <see cref="XdpMoveWindowTrafficTests"/> for an inet input chain, whose BPF_NETFILTER links move back at priority -1,
/// before the kernel's copy at 0: the copy sees none of the datagrams a `counter drop` rule drops from the early install
/// on, so its count read after the install is carried exactly (before branch `earlyinstall` what the links dropped until
/// that read was taken off as the overlap both counted); and a kernel commit failing after the install closes the links,
/// the kernel's copy filters alone again, and its listing gets what the links dropped (before, nothing was installed
/// before the kernel commit could fail).
/// </summary>
public sealed class NetfilterMoveBackWindowTrafficTests
{
    const string Ruleset = """
        table inet t {
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 counter drop
                udp dport 14 reject
            }
        }
        """;

    [Fact]
    public void ACounterDropRuleMovingBackToANetfilterLinkIsCountedExactly()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Ruleset);
        Assert.Contains("table inet t chain in: kernel nf_tables", s.Rig.Explain());
        var handle = PlacementMoveCounterTrafficTests.Handle(s, "reject", "inet");

        var r = XdpMoveWindowTrafficTests.StreamDuring([s.Kernel, s.Rig.Daemon.Ns], () => s.Apply($"delete rule inet t in handle {handle}"));
        Assert.Contains("table inet t chain in: BPF", s.Rig.Explain());
        var (k, d) = s.Command("list", "table", "inet", "t");
        var (kc, dc) = (XdpMoveWindowTrafficTests.Counted(k), XdpMoveWindowTrafficTests.Counted(d));
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, counted {kc}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, counted {dc}";
        Console.WriteLine(report);
        Assert.Equal((1, 0, 0L), MoveWindowTrafficTests.EarlyBound(s.Rig.Daemon.Log));
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && kc == r[0].Sent, report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && Math.Abs(dc - r[1].Sent) <= XdpMoveWindowTrafficTests.Slack, $"{report}\n{s.Rig.Daemon.Log}");
    }

    /// <summary>
    /// The same move with priority -1 taken by a chain BPF runs all along: the link takes +1, after the kernel's copy, so the
    /// copy drops every datagram the `counter drop` rule counts until its commit and the link never sees them. The
    /// kernel's count is then final only at the commit: it is taken from the DELRULE notification the commit echoes (its
    /// counters as the new generation went live). Before branch `echocount` the count read beside the links' was carried,
    /// and what the copy dropped after that read was lost.
    /// </summary>
    [Fact]
    public void ACounterDropRuleMovingBackToALinkAfterTheKernelsCopyIsCountedExactly()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        var r = MoveBackAfterTheCopy(s, Ruleset);
        var (k, d) = s.Command("list", "table", "inet", "t");
        var (kc, dc) = (XdpMoveWindowTrafficTests.Counted(k), XdpMoveWindowTrafficTests.Counted(d));
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, counted {kc}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, counted {dc}";
        Console.WriteLine(report);
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && kc == r[0].Sent, report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && dc == r[1].Sent, $"{report}\n{s.Rig.Daemon.Log}");
        Assert.Contains("kernel commit: 1 counter(s) carried from the kernel's final count", s.Rig.Daemon.Log);
    }

    /// <summary>
    /// Applies <paramref name="ruleset"/> (table inet t, chain in at priority 0 ending in `udp dport 14 reject`) with a
    /// chain BPF runs at priority -1 besides, then streams while deleting the reject moves chain in back from the kernel to
    /// a link at +1; per side, datagrams sent and received (<see cref="XdpMoveWindowTrafficTests.StreamDuring"/>).
    /// </summary>
    internal static List<(long Sent, long Got9, long Got10)> MoveBackAfterTheCopy(PacketPathSetTrafficTests.Sides s, string ruleset)
    {
        s.Apply(ruleset.Replace("    chain in {", """
                chain pre {
                    type filter hook input priority -1; policy accept;
                    udp dport 11 counter
                }
                chain in {
            """));
        var explain = s.Rig.Explain();
        Assert.True(explain.Contains("table inet t chain in: kernel nf_tables") && explain.Contains("table inet t chain pre: BPF"), explain);
        var handle = PlacementMoveCounterTrafficTests.Handle(s, "reject", "inet");
        var r = XdpMoveWindowTrafficTests.StreamDuring([s.Kernel, s.Rig.Daemon.Ns], () => s.Apply($"delete rule inet t in handle {handle}"));
        explain = s.Rig.Explain();
        Assert.True(explain.Contains("table inet t chain in: BPF") && explain.Contains("link at priority 1 "), explain);
        return r;
    }

    [Fact]
    public void AKernelCommitFailingAfterTheEarlyInstallLeavesTheKernelFiltering() =>
        XdpMoveWindowTrafficTests.KernelCommitFailsAfterTheEarlyInstall(Ruleset, "inet", "reject", rig =>
        {
            var explain = rig.Explain();
            Assert.False(explain.Contains("link at priority"), explain);
        });
}
