namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Quotas at their edges moved from BPF to the kernel's nf_tables, compared with the kernel (6.18), where nothing moves.
/// A quota `nft reset quotas` reset in BPF counts on from 0 there: measured with `over 500 bytes used 400 bytes`, three
/// 29-byte datagrams, a reset, one, the move and four more, the kernel lists `used 145` and matches none (before branch
/// `quotaedge` bpfilterd sent it with its created `used` plus what BPF consumed since the reset: `used 100`, 2 packets
/// over). A quota BPF consumed past its bytes is sent capped (the kernel refuses NFTA_QUOTA_CONSUMED above
/// NFTA_QUOTA_BYTES with EINVAL, and lists a depleted quota's `used` capped): before, the move failed.
/// </summary>
public sealed class QuotaEdgeMoveTrafficTests
{
    const string ResetNetdev = """
        table netdev t {
            quota q {
                over 500 bytes used 400 bytes
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota name "q" counter
            }
        }
        """;

    /// <summary>In BPF: three datagrams, `reset quotas` on both sides, one datagram (`used 29` on both).</summary>
    internal static void SpendResetSpend(PacketPathSetTrafficTests.Sides s)
    {
        s.Apply(ResetNetdev);
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        s.SameOutput("reset", "quotas");
        s.Send(12, "127.0.0.2");
        Assert.Contains("used 29 bytes", s.SameListing("table netdev t"));
    }

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void ANamedQuotaResetInBpfCountsOnFromZeroInTheKernel(string toKernel, string? back)
    {
        _ = back;
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        SpendResetSpend(s);

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Contains("used 29 bytes", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        var moved = s.SameListing("table netdev t");
        Assert.Contains("used 145 bytes", moved);
        Assert.Contains("counter packets 0 bytes 0", moved);
    }

    /// <summary>The kernel copy's start point survives restarts (the state file): before, a restarted daemon read it from the created `used` again.</summary>
    [Fact]
    public void ANamedQuotaResetInBpfKeepsItsStartInTheKernelAcrossRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        SpendResetSpend(s);
        s.Apply("add rule netdev t in udp dport 14 log group 1");
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        Assert.Equal(0, s.Rig.Daemon.Terminate());
        s.Rig.Daemon.Restart();
        Assert.Contains("used 29 bytes", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        Assert.Contains("used 87 bytes", s.SameListing("table netdev t"));
        // a commit after the restart keeps the start point too
        s.Apply("add rule netdev t in udp dport 15 counter");
        s.Send(12, "127.0.0.2", "127.0.0.3");
        var moved = s.SameListing("table netdev t");
        Assert.Contains("used 145 bytes", moved);
        Assert.Contains("quota name \"q\" counter packets 0 bytes 0", moved);
    }

    const string DepletedNetdev = """
        table netdev t {
            quota q {
                over 50 bytes used 40 bytes
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota over 50 bytes used 40 bytes counter
                udp dport 12 quota until 50 bytes used 40 bytes counter
                udp dport 12 quota name "q" counter
            }
        }
        """;

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void AQuotaBpfDepletedMovesToTheKernelCapped(string toKernel, string? back)
    {
        _ = back;
        using var s = PlacementMoveCounterTrafficTests.InBpf(DepletedNetdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var depleted = s.SameListing("table netdev t");
        Assert.Contains("used 50 bytes", depleted);

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Equal(Quotas(depleted), Quotas(s.SameListing("table netdev t")));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        Assert.NotEqual(Quotas(depleted), Quotas(s.SameListing("table netdev t")));
    }

    /// <summary>The listing's quota lines (the move adds a rule to the table or none).</summary>
    static string Quotas(string listing) => string.Join("\n", listing.Split('\n').Where(l => l.Contains("quota") || l.Contains("used")));
}
