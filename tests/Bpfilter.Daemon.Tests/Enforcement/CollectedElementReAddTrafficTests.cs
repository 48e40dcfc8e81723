namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A counted element that expired in a full set (`size`) and was garbage-collected (by the kernel's set GC; by the
/// emulation when the next add needs its room, or by BPF's GC for an element the packet path added), then added again,
/// compared with the kernel (6.18): the new element's counter starts at 0, not at what the old one's slot held.
/// Every packet is 29 bytes (IPv4 20, UDP 8, one byte).
/// </summary>
public sealed class CollectedElementReAddTrafficTests
{
    const string Ruleset = """
        table ip t {
            set s {
                type ipv4_addr
                size 2
                flags dynamic,timeout
                counter
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 add @s { ip daddr timeout 5s }
                udp dport 16 ip daddr @s
            }
        }
        """;

    /// <summary>Past the 5 s timeout and the kernel's next set GC run (every second); 5 s, not 2: at a load of 40 the 2 s elements had expired, on the kernel side too, before the first listing.</summary>
    const int PastExpiryAndGc = 6500;

    [Fact]
    public void ACollectedElementAddedAgainFromTheControlPlaneStartsAtZero()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        // not written from the packet path: BPF runs no control-plane element with statements in a set that is
        s.Apply(Ruleset.Replace("udp dport 12 add @s { ip daddr timeout 5s }", ""));
        s.Apply("add element ip t s { 127.0.0.2 timeout 5s, 127.0.0.3 timeout 5s }");
        s.Send(16, "127.0.0.2", "127.0.0.2", "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87", s.SameListing());
        Thread.Sleep(PastExpiryAndGc);
        // the set is full but for the expired elements: this add needs the room of one of them
        s.Apply("add element ip t s { 127.0.0.4 }");
        s.Apply("add element ip t s { 127.0.0.2 }");
        var listing = s.SameListing();
        Assert.Contains("127.0.0.2 counter packets 0 bytes 0", listing);
        s.Send(16, "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 1 bytes 29", s.SameListing());
    }

    [Fact]
    public void ACollectedElementAddedAgainByThePacketPathStartsAtZero()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Send(16, "127.0.0.2", "127.0.0.2", "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 4 bytes 116", s.SameListing()); // its add counts too
        Thread.Sleep(PastExpiryAndGc);
        Assert.DoesNotContain("127.0.0.2", s.SameListing());
        s.Send(12, "127.0.0.2");
        s.Send(16, "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", s.SameListing());
    }
}
