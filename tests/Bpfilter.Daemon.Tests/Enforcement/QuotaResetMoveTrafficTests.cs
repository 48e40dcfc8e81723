namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named quota reset on one side whose chain a commit then moves to BPF, compared with the kernel (6.18), where nothing
/// moves: after `nft reset quotas` it counts from nothing until depleted again. Measured with `until 100 bytes used 40
/// bytes` and 29-byte datagrams (the counter after `quota name "q"` counts those it let through): `used 58` since the
/// reset at the move back to BPF, the kernel lets one more through of the next three. Before branch `quotareset` BPF's
/// slot took over from the created `used` plus what the kernel consumed since the reset (40 + 58): the listing read
/// right, but BPF let none through.
/// </summary>
public sealed class QuotaResetMoveTrafficTests
{
    const string Netdev = """
        table netdev t {
            quota q {
                until 100 bytes used 40 bytes
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota name "q" counter
            }
        }
        """;

    /// <summary>Three datagrams after the move back to BPF: one let through (used 87), the others over (used 100).</summary>
    static void SpendInBpf(PacketPathSetTrafficTests.Sides s)
    {
        Assert.Contains("used 58 bytes", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var spent = s.SameListing("table netdev t");
        Assert.Contains("used 100 bytes", spent);
        Assert.Contains("quota name \"q\" counter packets 5 bytes 145", spent);
    }

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void ANamedQuotaResetInTheKernelGoesOnFromItsResetInBpf(string toKernel, string? back)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Netdev);
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        Assert.Contains("counter packets 2 bytes 58", s.SameListing("table netdev t"));
        s.SameOutput("reset", "quotas");
        s.Send(12, "127.0.0.2", "127.0.0.3");
        PlacementMoveCounterTrafficTests.Back(s, back);
        SpendInBpf(s);
    }

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void ANamedQuotaResetInBpfGoesOnFromItsResetAfterAMoveToTheKernelAndBack(string toKernel, string? back)
    {
        using var s = PlacementMoveCounterTrafficTests.InBpf(Netdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        Assert.Contains("counter packets 2 bytes 58", s.SameListing("table netdev t"));
        s.SameOutput("reset", "quotas");
        s.Send(12, "127.0.0.2");
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        s.Send(12, "127.0.0.2");
        PlacementMoveCounterTrafficTests.Back(s, back);
        SpendInBpf(s);
    }
}
