namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// `add element` of a key whose element has expired, compared with the kernel (6.18): the expired element is gone for
/// the kernel, the add makes a new one (nft_set_elem_init) whose counter, quota and limit start from what the add gave
/// them. Adding a live element again only renews its timeout (since 6.10): its counter and quota go on. Every packet
/// is 29 bytes (IPv4 20, UDP 8, one byte); the limit refills one packet an hour, nothing within the test.
/// </summary>
public sealed class ExpiredElementReAddTrafficTests
{
    const string Ruleset = """
        table ip t {
            set s {
                type ipv4_addr
                flags timeout
                counter quota 1000 bytes
            }
            set m {
                type ipv4_addr
                flags timeout
                limit rate 1/hour burst 1 packets
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 16 ip daddr @s
                udp dport 17 ip daddr @m counter
            }
        }
        """;

    static void Burst(PacketPathSetTrafficTests.Sides s, int packets)
    {
        var to = Enumerable.Repeat("127.0.0.2", packets).ToArray();
        s.Send(16, to);
        s.Send(17, to);
    }

    [Fact]
    public void AnExpiredElementAddedAgainStartsAnew()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        // 5 s: the burst and listings before expiry must fit in it on a loaded machine (2 s did not always)
        const string add = "add element ip t s { 127.0.0.2 timeout 5s }\nadd element ip t m { 127.0.0.2 timeout 5s }\n";
        s.Apply(add);
        Burst(s, 3);
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87 quota 1000 bytes used 87 bytes", s.SameListing());
        Thread.Sleep(6000);
        Assert.DoesNotContain("127.0.0.2", s.SameListing());
        s.Apply(add);
        Assert.Contains("127.0.0.2 counter packets 0 bytes 0 quota 1000 bytes timeout 5s", s.SameListing());
        Burst(s, 1);
        var listing = s.SameListing();
        Assert.Contains("127.0.0.2 counter packets 1 bytes 29 quota 1000 bytes used 29 bytes", listing);
        Assert.Contains("udp dport 17 ip daddr @m counter packets 2", listing); // a full bucket again
    }

    [Fact]
    public void ALiveElementAddedAgainGoesOn()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        s.Apply("add element ip t s { 127.0.0.2 timeout 1m }\nadd element ip t m { 127.0.0.2 timeout 1m }\n");
        Burst(s, 3);
        s.Apply("add element ip t s { 127.0.0.2 timeout 2m }\nadd element ip t m { 127.0.0.2 timeout 2m }\n");
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87 quota 1000 bytes used 87 bytes timeout 2m", s.SameListing());
        Burst(s, 1);
        var listing = s.SameListing();
        Assert.Contains("127.0.0.2 counter packets 4 bytes 116 quota 1000 bytes used 116 bytes timeout 2m", listing);
        Assert.Contains("udp dport 17 ip daddr @m counter packets 1", listing); // still empty: the burst's one packet
    }
}
