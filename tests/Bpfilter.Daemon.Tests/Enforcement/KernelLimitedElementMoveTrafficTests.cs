namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Elements the kernel's packet path added with a per-element `limit` (a dynset's or a meter's), when the chain that
/// writes their set would move back to BPF, compared with the kernel (6.18), where nothing moves. The kernel does not
/// list a limit's tokens (nft_limit_dump sends rate, unit, burst, type and flags only), so no state BPF could be given
/// is known to give the verdicts the kernel's element gives: the chain stays in the kernel while such an element lives,
/// and moves once none does. Every packet is 29 bytes at lo's ingress.
/// </summary>
public sealed class KernelLimitedElementMoveTrafficTests
{
    const string Limited = """
        table netdev t {
            set lim {
                type ipv4_addr
                size 8
                flags dynamic
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 11 update @lim { ip daddr limit rate 1/hour burst 2 packets } counter
                udp dport 12 ip daddr @lim counter
            }
        }
        """;

    public static TheoryData<string, string?> Moves => PlacementMoveCounterTrafficTests.Moves;

    [Theory]
    [MemberData(nameof(Moves))]
    public void AChainWhoseSetHoldsKernelLimitedElementsStaysInTheKernelUntilNoneIsLeft(string toKernel, string? back)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Limited);
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        s.Send(11, "127.0.0.2", "127.0.0.2", "127.0.0.3");
        Assert.Contains("127.0.0.2 limit rate 1/hour burst 2 packets", s.SameListing("table netdev t"));

        // .2's bucket is spent in the kernel: a BPF copy with a full one (or none) would count the packet to .2 below
        s.Apply(PlacementMoveCounterTrafficTests.BackCommand(s, back));
        var explain = s.Rig.Explain();
        Assert.Contains("table netdev t chain in: kernel nf_tables", explain);
        Assert.Contains("the kernel's packet path added with a limit", explain);
        s.Send(11, "127.0.0.2", "127.0.0.3");
        s.Send(12, "127.0.0.2", "127.0.0.3");
        Assert.Contains("update @lim { ip daddr limit rate 1/hour burst 2 packets } counter packets 4 bytes 116", s.SameListing("table netdev t"));

        // with no such element left, nothing keeps the chain in the kernel
        s.Apply("flush set netdev t lim");
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Send(11, "127.0.0.2", "127.0.0.2", "127.0.0.2");
        s.Send(12, "127.0.0.2");
        Assert.Contains("update @lim { ip daddr limit rate 1/hour burst 2 packets } counter packets 6 bytes 174", s.SameListing("table netdev t"));
    }

    /// <summary>A netdev chain whose meter gives each element a limit (with <paramref name="timeout"/>), moved to the kernel by `log group`.</summary>
    static string LimitedMeter(string timeout) => $$"""
        table netdev t {
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 13 meter m size 8 { ip daddr {{timeout}}limit rate 1/hour burst 1 packets } counter
                udp dport 14 log group 1
            }
        }
        """;

    /// <summary>
    /// A meter's elements (which `flush` cannot remove, and which never expire) keep their chain in the kernel. Before
    /// branch `meterback` the kernel named a meter's set anew (`__setN`) and bpfilterd could not read it back: a meter
    /// that might hold limited elements kept its chain in the kernel for good; now it is read by its name, as sets are.
    /// </summary>
    [Fact]
    public void AChainWhoseMeterHoldsKernelLimitedElementsStaysInTheKernel()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(LimitedMeter(""));
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(13, "127.0.0.2", "127.0.0.2");
        Assert.Contains("counter packets 1 bytes 29", s.SameListing("table netdev t"));

        s.Apply(PlacementMoveCounterTrafficTests.BackCommand(s, null));
        var explain = s.Rig.Explain();
        Assert.True(explain.Contains("table netdev t chain in: kernel nf_tables (it reaches set m, whose 1 element(s) the kernel's packet path added with a limit"),
            explain + s.Rig.Daemon.Log);
        s.Send(13, "127.0.0.2", "127.0.0.3");
        Assert.Contains("counter packets 2 bytes 58", s.SameListing("table netdev t"));
    }

    /// <summary>
    /// A meter whose limited elements expire follows the rule of a set's: its chain stays in the kernel while such an
    /// element lives and moves back to BPF at the first commit after the last one expired (before branch `meterback`,
    /// for good).
    /// </summary>
    [Fact]
    public void AChainWhoseMeterHeldKernelLimitedElementsMovesBackOnceTheyExpired()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(LimitedMeter("timeout 3s "));
        s.Send(13, "127.0.0.2", "127.0.0.2");
        s.Apply(PlacementMoveCounterTrafficTests.BackCommand(s, null));
        Assert.Contains("table netdev t chain in: kernel nf_tables (it reaches set m, whose 1 element(s)", s.Rig.Explain());

        Thread.Sleep(4000);
        s.Apply("add rule netdev t in udp dport 15 counter");
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Send(13, "127.0.0.2", "127.0.0.2", "127.0.0.3");
        Assert.Contains("counter packets 3 bytes 87", s.SameListing("table netdev t"));
        s.SameListing("meter netdev t m");
    }
}
