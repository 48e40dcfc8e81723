namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named quota of a kernel-placed chain reset by `nft reset quota` / `nft reset quotas`, compared with the kernel (6.18),
/// by listings and by verdicts (the counter after `quota name "q"` counts the datagrams the quota let through). In the
/// kernel the reset takes back what the object consumed (nft_quota_do_dump with reset): the quota lets traffic through
/// again. Measured with `until 100 bytes used 40 bytes` and 29-byte datagrams: four pass two (used 100, depleted), the
/// reset, two more pass (counter packets 4, used 58). Before branch `quotareset` bpfilterd only moved its listing's zero:
/// the kernel's copy stayed depleted (counter packets 2) and the listing read `used 0` where the kernel's read 58.
/// </summary>
public sealed class KernelQuotaResetTrafficTests
{
    /// <summary>`log group 1` runs in the kernel: the chain is placed there from the start.</summary>
    const string Netdev = """
        table netdev t {
            quota q {
                until 100 bytes used 40 bytes
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota name "q" counter
                udp dport 14 log group 1
            }
        }
        """;

    static void Reset(PacketPathSetTrafficTests.Sides s, params string[] command)
    {
        s.SameOutput(command);
    }

    [Theory]
    [InlineData("reset", "quota", "netdev", "t", "q")]
    [InlineData("reset", "quotas")]
    public void AKernelPlacedNamedQuotaLetsTrafficThroughAgainAfterAReset(params string[] reset)
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Netdev);
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        var depleted = s.SameListing("table netdev t");
        Assert.Contains("used 100 bytes", depleted);
        Assert.Contains("counter packets 2 bytes 58", depleted);

        Reset(s, reset);
        Assert.DoesNotContain("used", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        var again = s.SameListing("table netdev t");
        Assert.Contains("used 58 bytes", again);
        Assert.Contains("counter packets 4 bytes 116", again);

        // the kernel copy's new start point survives a restart (the state file) and the next commit
        s.AcrossRestarts(() => s.SameListing("table netdev t"), () =>
        {
            s.Send(12, "127.0.0.2");
            Assert.Contains("used 87 bytes", s.SameListing("table netdev t"));
        });
        s.Apply("add rule netdev t in udp dport 15 counter");
        s.Send(12, "127.0.0.2", "127.0.0.3");
        var spent = s.SameListing("table netdev t");
        Assert.Contains("used 100 bytes", spent);
        Assert.Contains("quota name \"q\" counter packets 5 bytes 145", spent);
    }
}
