namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named counter deleted and added again in one batch (its table kept, `delete counter` then `add counter`) is another
/// counter: in the kernel's nf_tables it counts from the packets and bytes the batch gives it, whatever its chain's
/// placement did before or does in the same batch; so does a rule's own counter when the rule is deleted and added again.
/// Measured on the kernel (6.18): three 29-byte datagrams counted, then the counter renewed as `packets 5 bytes 500` lists
/// that, and two more list `packets 7 bytes 558`. The twin of <see cref="NamedQuotaRenewalTrafficTests"/>.
/// Before branch `countrenewal` bpfilterd carried the old counter's count into the renewed one when the batch moved its
/// chain either way (`packets 8 bytes 587` listed where the kernel lists 5/500): only a re-created table counted as renewed.
/// </summary>
public sealed class NamedCounterRenewalTrafficTests
{
    /// <summary>What moves the chain to the kernel (BPF cannot run nflog).</summary>
    internal const string Spend = "add rule netdev t in udp dport 14 log group 1";

    const string Netdev = """
        table netdev t {
            counter c {
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 counter
                udp dport 12 counter name "c"
            }
        }
        """;

    /// <summary>The counter renewed with its chain's rules; <paramref name="inKernel"/>: the chain runs in the kernel after it.</summary>
    static string Renew(bool inKernel) => $$"""
        flush chain netdev t in
        delete counter netdev t c
        add counter netdev t c { packets 5 bytes 500 }
        add rule netdev t in udp dport 12 counter
        add rule netdev t in udp dport 12 counter name "c"
        {{(inKernel ? Spend : "")}}
        """;

    internal static string Where(bool inKernel) => inKernel ? "table netdev t chain in: kernel nf_tables" : "table netdev t chain in: BPF";

    /// <summary>Where the chain runs before the batch and after it: moved either way, or kept in the kernel or in BPF.</summary>
    public static TheoryData<bool, bool> Placements => new()
    {
        { true, true },
        { false, true },
        { true, false },
        { false, false },
    };

    /// <summary>The table counted three datagrams, its chain placed as <paramref name="inKernel"/> says.</summary>
    static void Count(PacketPathSetTrafficTests.Sides s, bool inKernel)
    {
        s.Apply(Netdev);
        if (inKernel) s.Apply(Spend);
        Assert.Contains(Where(inKernel), s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        Assert.Contains("packets 3 bytes 87", s.SameListing("table netdev t"));
    }

    [Theory]
    [MemberData(nameof(Placements))]
    public void ARenewedNamedCounterCountsFromItsNewValues(bool before, bool after)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        Count(s, before);

        s.Apply(Renew(after));
        Assert.Contains(Where(after), s.Rig.Explain());
        var renewed = s.SameListing("table netdev t");
        Assert.Contains("packets 5 bytes 500", renewed);
        Assert.Contains("udp dport 12 counter packets 0 bytes 0", renewed);
        s.SameOutput("list", "counters");

        s.Send(12, "127.0.0.2", "127.0.0.3");
        var counted = s.SameListing("table netdev t");
        Assert.Contains("packets 7 bytes 558", counted);
        Assert.Contains("udp dport 12 counter packets 2 bytes 58", counted);
        s.SameOutput("list", "counters");
    }

    /// <summary>A rule deleted by its handle and added again in the batch that moves (or keeps) its chain: its counter is the new rule's.</summary>
    [Theory]
    [MemberData(nameof(Placements))]
    public void ARuleAddedAgainCountsFromItsNewCounter(bool before, bool after)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        Count(s, before);

        var handle = PlacementMoveCounterTrafficTests.Handle(s, "udp dport 12 counter packets 3 bytes 87");
        var move = before == after ? "" : before
            ? $"delete rule netdev t in handle {PlacementMoveCounterTrafficTests.Handle(s, "log group 1")}"
            : Spend;
        s.Apply($"""
            delete rule netdev t in handle {handle}
            add rule netdev t in udp dport 12 counter packets 5 bytes 500
            {move}
            """);
        Assert.Contains(Where(after), s.Rig.Explain());
        var renewed = s.SameListing("table netdev t");
        Assert.Contains("udp dport 12 counter packets 5 bytes 500", renewed);
        Assert.Contains("packets 3 bytes 87", renewed);

        s.Send(12, "127.0.0.2", "127.0.0.3");
        var counted = s.SameListing("table netdev t");
        Assert.Contains("udp dport 12 counter packets 7 bytes 558", counted);
        Assert.Contains("packets 5 bytes 145", counted);
        s.SameOutput("list", "counters");
    }
}
