namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A meter whose chain a commit moves to the kernel's nf_tables (a rule BPF cannot run: `log group` at a netdev hook,
/// `reject` at an ip one) and back (the rule deleted), compared with the kernel (6.18), where nothing moves: the
/// elements the kernel's packet path added to the meter stay, with their counters and the time they have left. Before
/// branch `meterback` the daemon sent a meter's set as `__set%d`, so the kernel named it `__setN` and bpfilterd read
/// no meter back by its name: `nft list meter` listed no element while the kernel held the chain, and BPF's meter
/// started empty when the chain moved back. Every packet is 29 bytes.
/// </summary>
public sealed class MeterMoveTrafficTests
{
    /// <summary>
    /// The table (family, hook), the rule that moves its chain to the kernel, what that rule lists as, and whether
    /// deleting it moves the chain back to BPF: both do (an ip chain's BPF_NETFILTER link takes a priority next to the
    /// one the kernel's copy holds until the kernel commit, see NetfilterMoveBackTrafficTests; before branch `nfback` it
    /// stayed in the kernel, and its meter listed the kernel's elements).
    /// </summary>
    public static TheoryData<string, string, string, string, bool> Placements => new()
    {
        { "netdev", "ingress device \"lo\"", "udp dport 14 log group 1", "log group 1", true },
        { "ip", "output", "udp dport 14 reject", "reject", true },
    };

    [Theory]
    [MemberData(nameof(Placements))]
    public void AMeterKeepsTheElementsTheKernelsPacketPathAddedWhenItsChainMovesBack(string family, string hook, string toKernel, string listed, bool movesBack)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply($$"""
            table {{family}} t {
                chain in {
                    type filter hook {{hook}} priority 0; policy accept;
                    udp dport 13 meter m size 8 { ip daddr counter }
                    udp dport 15 meter mt size 8 { ip daddr timeout 30s counter }
                }
            }
            """);
        Assert.Contains($"table {family} t chain in: BPF", s.Rig.Explain());
        s.Apply($"add rule {family} t in {toKernel}");
        Assert.Contains($"table {family} t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(13, "127.0.0.2", "127.0.0.2", "127.0.0.3");
        s.Send(15, "127.0.0.2", "127.0.0.3");
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", s.SameListing($"meter {family} t m"));

        s.Apply($"delete rule {family} t in handle {PlacementMoveCounterTrafficTests.Handle(s, listed, family)}");
        if (movesBack)
        {
            var explain = s.Rig.Explain();
            Assert.True(explain.Contains($"table {family} t chain in: BPF"), explain + s.Rig.Daemon.Log);
        }
        var m = s.SameListing($"meter {family} t m");
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", m);
        Assert.Contains("127.0.0.3 counter packets 1 bytes 29", m);
        Assert.Contains("127.0.0.3 counter packets 1 bytes 29 timeout 30s expires", s.SameListing($"meter {family} t mt"));

        // the packet path goes on from what the kernel's counted, and renews what the kernel's added
        s.Send(13, "127.0.0.2", "127.0.0.4");
        s.Send(15, "127.0.0.3");
        m = s.SameListing($"meter {family} t m");
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87", m);
        Assert.Contains("127.0.0.4 counter packets 1 bytes 29", m);
        var mt = s.SameListing($"meter {family} t mt");
        Assert.Contains("127.0.0.2 counter packets 1 bytes 29 timeout 30s expires", mt);
        Assert.Contains("127.0.0.3 counter packets 2 bytes 58 timeout 30s expires", mt);
        s.SameListing("ruleset");
    }
}
