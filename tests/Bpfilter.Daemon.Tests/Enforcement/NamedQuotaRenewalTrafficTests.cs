namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named quota deleted and added again in one batch (its table kept, `delete quota` then `add quota`) is another
/// quota: in the kernel's nf_tables it starts from the `used` the batch gives it, whatever its chain's placement did
/// before or does in the same batch. Measured on the kernel (6.18): a quota `over 500 bytes used 400 bytes` reset to 0 and
/// spent, renewed as it was, lists `used 400`; four 29-byte datagrams then list `used 500` (516, listed capped) and only the fourth is over.
/// Before branch `reviewmend2` bpfilterd kept what the old quota had: its kernel start point when the chain stayed in the
/// kernel (0 after the reset: `used 500` listed, 800 capped, where the kernel lists 400), and its consumption when the batch
/// moved the chain (`used 429` after BPF's 29 bytes went to the kernel, `used 487` after the kernel's 87 went to BPF), which
/// the packet path then spent from.
/// </summary>
public sealed class NamedQuotaRenewalTrafficTests
{
    /// <summary>The quota renewed with its chain's rules; <paramref name="inKernel"/>: the chain runs in the kernel after it.</summary>
    static string Renew(bool inKernel) => $$"""
        flush chain netdev t in
        delete quota netdev t q
        add quota netdev t q { over 500 bytes used 400 bytes }
        add rule netdev t in udp dport 12 quota name "q" counter
        {{(inKernel ? NamedCounterRenewalTrafficTests.Spend : "")}}
        """;

    public static TheoryData<bool, bool> Placements => new()
    {
        { true, true },
        { false, true },
        { true, false },
    };

    [Theory]
    [MemberData(nameof(Placements))]
    public void ARenewedNamedQuotaStartsFromItsNewUsed(bool before, bool after)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        QuotaEdgeMoveTrafficTests.SpendResetSpend(s);
        if (before)
        {
            s.Apply(NamedCounterRenewalTrafficTests.Spend);
            Assert.Contains(NamedCounterRenewalTrafficTests.Where(true), s.Rig.Explain());
            s.Send(12, "127.0.0.2", "127.0.0.3");
            Assert.Contains("used 87 bytes", s.SameListing("table netdev t"));
        }

        s.Apply(Renew(after));
        Assert.Contains(NamedCounterRenewalTrafficTests.Where(after), s.Rig.Explain());
        var renewed = s.SameListing("table netdev t");
        Assert.Contains("used 400 bytes", renewed);
        Assert.Contains("quota name \"q\" counter packets 0 bytes 0", renewed);
        s.SameOutput("list", "quotas");

        // only the fourth datagram finds the quota over 500 bytes
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        var spent = s.SameListing("table netdev t");
        Assert.Contains("used 500 bytes", spent);
        Assert.Contains("quota name \"q\" counter packets 1 bytes 29", spent);
        s.SameOutput("list", "quotas");
    }
}
