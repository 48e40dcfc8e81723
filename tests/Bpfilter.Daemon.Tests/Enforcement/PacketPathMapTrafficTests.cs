namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Maps of values written from the packet path (`add|update|delete @m { KEY : DATA }`) against the kernel, on real
/// traffic (UDP from the namespace to 127.0.0.x through the output hook, source 127.0.0.1): the same ruleset in a
/// kernel namespace and in bpfilterd (auto and `--placement bpf-only`: the chain runs in BPF either way), the same
/// packets and nft commands, the same listings (data, expiry within the tolerance, counters of a membership test on
/// the map). `update` on a live element keeps its data (measured on 6.18: the first packet's 127.0.0.2 stays when
/// the next one goes to 127.0.0.3); once the packet path deletes the element, the next packet's data is taken.
/// </summary>
public sealed class PacketPathMapTrafficTests
{
    const string Ruleset = """
        table ip t {
            map last {
                type ipv4_addr : ipv4_addr
                size 8
                flags dynamic,timeout
                timeout 1m
            }
            map marks {
                type ipv4_addr : mark
                size 8
                flags dynamic
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 9 update @last { ip saddr : ip daddr }
                udp dport 10 add @marks { ip daddr : 0x0000002a }
                udp dport 11 delete @last { ip saddr : ip daddr }
                udp dport 12 ip daddr @marks counter
            }
        }
        """;

    [Theory]
    [InlineData("auto")]
    [InlineData("bpf-only")]
    public void DataTheMapsGetFromThePacketPathIsListedKeptAndMatchedAsInTheKernel(string placement)
    {
        using var s = new PacketPathSetTrafficTests.Sides(placement);
        s.Apply(Ruleset);
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        s.Apply("add element ip t marks { 127.0.0.9 : 0x00000007 }");
        s.Send(9, "127.0.0.2");
        s.Send(9, "127.0.0.3"); // live: its data stays 127.0.0.2, its expiry is renewed
        s.Send(10, "127.0.0.5", "127.0.0.9"); // 127.0.0.9 is there: keeps 0x7
        s.Send(12, "127.0.0.5", "127.0.0.6", "127.0.0.9"); // two members
        var listing = s.SameListing();
        Assert.Contains("127.0.0.1 expires", listing);
        Assert.Contains(": 127.0.0.2", listing);
        Assert.Contains("127.0.0.5 : 0x0000002a", listing);
        Assert.Contains("127.0.0.9 : 0x00000007", listing);
        Assert.Contains("counter packets 2 bytes", listing);

        var (gk, gd) = s.Command("get", "element", "ip", "t", "marks", "{ 127.0.0.5 }");
        Assert.True(gk.Exit == 0 && gd.Exit == 0, gd.Stderr);
        Assert.Equal(gk.Stdout, gd.Stdout);

        // a batch deletes an element the packet path added; the next packet adds it again
        s.Apply("delete element ip t marks { 127.0.0.5 }");
        s.SameListing("map ip t marks");
        s.Send(10, "127.0.0.5");
        Assert.Contains("127.0.0.5 : 0x0000002a", s.SameListing("map ip t marks"));

        // the packet path's delete (its data register read and ignored), then a new element with the next packet's data
        s.Send(11, "127.0.0.7");
        Assert.DoesNotContain("127.0.0.1", s.SameListing("map ip t last"));
        s.Send(9, "127.0.0.4");
        Assert.Contains(": 127.0.0.4", s.SameListing("map ip t last"));
    }
}
