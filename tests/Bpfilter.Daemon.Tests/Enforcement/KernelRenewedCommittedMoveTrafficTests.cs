namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Committed (control-plane) elements of a set the kernel's packet path writes, renewed (`update @s { ... timeout 1m }`)
/// or deleted (`delete @s`) by the kernel's packet path, when the chain moves back to BPF, compared with the kernel (6.18),
/// where nothing moves: BPF's map takes the kernel's expiry and leaves the deleted element out, as the kernel's listing
/// before the move shows them. Every packet is 29 bytes at lo's ingress.
/// </summary>
public sealed class KernelRenewedCommittedMoveTrafficTests
{
    const string Seen = """
        table netdev t {
            set seen {
                type ipv4_addr
                size 8
                flags dynamic,timeout
                timeout 1m
                elements = { 127.0.0.2 timeout 20s, 127.0.0.3 timeout 20s, 127.0.0.4 timeout 20s }
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 11 update @seen { ip daddr timeout 1m }
                udp dport 12 delete @seen { ip daddr }
                udp dport 13 ip daddr @seen counter
            }
        }
        """;

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void RenewedAndDeletedCommittedElementsFollowTheKernelBackToBpf(string toKernel, string? back)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Seen);
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        s.Send(11, "127.0.0.2");
        s.Send(12, "127.0.0.3");
        var listing = s.SameListing("table netdev t");
        Assert.DoesNotContain("127.0.0.3", listing);

        PlacementMoveCounterTrafficTests.Back(s, back);
        listing = s.SameListing("table netdev t");
        Assert.DoesNotContain("127.0.0.3", listing);
        Assert.Contains("127.0.0.2 timeout 20s expires", listing);
        s.Send(13, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        Assert.Contains("ip daddr @seen counter packets 2 bytes 58", s.SameListing("table netdev t"));
    }
}
