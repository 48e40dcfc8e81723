using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Sets updated from the packet path by an inet chain (an ipv4 and an ipv6 BPF_NETFILTER program) and read by chains
/// at another priority and another hook (more programs), against the kernel: IPv4 and IPv6 UDP over loopback in a
/// kernel namespace and in bpfilterd (auto placement and `--placement bpf-only`), then equal listings (counters
/// included, `expires` within the tolerance of <see cref="PacketPathSetTrafficTests"/>), `delete element` of an
/// element the packet path added, and the elements surviving a SIGKILL restart with pinned maps. Keys are the
/// destination addresses: on loopback the source address of a datagram to 127.0.0.x is 127.0.0.x as well, ::2 and
/// ::3 are added to lo on both sides.
/// </summary>
public sealed class InetPacketPathSetTrafficTests
{
    const string Ruleset = """
        table inet t {
            set s4 {
                type ipv4_addr
                size 8
                flags dynamic,timeout
                timeout 1m
            }
            set s6 {
                type ipv6_addr
                size 8
                flags dynamic,timeout
                timeout 1m
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 add @s4 { ip daddr }
                udp dport 9 add @s6 { ip6 daddr }
                udp dport 11 update @s4 { ip daddr timeout 2m }
                udp dport 11 update @s6 { ip6 daddr timeout 2m }
            }
            chain in2 {
                type filter hook input priority 10; policy accept;
                ip daddr @s4 udp dport 20 counter drop
                ip6 daddr @s6 udp dport 20 counter drop
                udp dport 20 counter
            }
            chain out {
                type filter hook output priority 0; policy accept;
                ip daddr @s4 udp dport 21 counter
                ip6 daddr @s6 udp dport 21 counter
            }
        }
        """;

    static void Setup(PacketPathSetTrafficTests.Sides s)
    {
        foreach (var ns in new[] { s.Kernel, s.Rig.Daemon.Ns })
            foreach (var a in new[] { "::2/128", "::3/128" })
                ns.Ip("-6", "addr", "add", a, "dev", "lo", "nodad");
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("bpf-only")]
    public void AnInetChainsPacketPathElementsAreSeenByEveryProgramAsInTheKernel(string placement)
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(placement, pins.Path);
        Setup(s);
        s.Apply(Ruleset);
        var explain = s.Rig.Explain();
        foreach (var c in new[] { "in", "in2", "out" }) Assert.Contains($"table inet t chain {c}: BPF", explain);

        s.Send(20, "127.0.0.2", "::2");               // nothing in the sets yet: counted, not dropped
        s.Send(9, "127.0.0.2", "127.0.0.3", "::2");   // the ipv4 program adds to @s4, the ipv6 one to @s6
        s.Send(11, "127.0.0.4", "::3");               // update adds with the rule's own timeout
        s.Send(20, "127.0.0.2", "127.0.0.4", "127.0.0.5", "::2", "::3"); // read at priority 10: dropped but for .5
        s.Send(21, "127.0.0.3", "::3", "::1");         // read at output
        var listing = s.SameListing("table inet t");
        Assert.Contains("127.0.0.4 timeout 2m expires", listing);
        Assert.Contains("::3 timeout 2m expires", listing);

        // delete element of elements only the packet path added, on both families
        s.Apply("delete element inet t s4 { 127.0.0.2 }\ndelete element inet t s6 { ::2 }");
        s.SameListing("table inet t");
        s.Send(20, "127.0.0.2", "::2"); // no longer dropped
        s.SameListing("table inet t");

        // a SIGKILL restart adopts the pinned programs with their shared maps: nothing lost, nothing opened
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        listing = s.SameListing("table inet t");
        foreach (var a in new[] { "127.0.0.3", "127.0.0.4", "::3" }) Assert.Contains(a, listing);
        s.Send(20, "127.0.0.3", "::3"); // still dropped by the reader
        s.Send(9, "::2");                // and the writer still shares its map with the readers
        s.Send(20, "::2");
        s.SameListing("table inet t");
    }
}
