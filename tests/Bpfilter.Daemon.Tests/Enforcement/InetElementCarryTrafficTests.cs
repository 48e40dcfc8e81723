namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// An inet chain's ipv4 and ipv6 programs write sets with element counters from the packet path (one set both families
/// write, keyed by the port, and one set per family), then rules giving new elements another statement list load both
/// programs anew onto new copies of the sets: the elements and their counters are carried once for the two programs,
/// and the counts go on as in the kernel (the same nft commands and UDP packets through the output hook in a kernel
/// namespace and in bpfilterd, then equal listings).
/// </summary>
public sealed class InetElementCarryTrafficTests
{
    const string Ruleset = """
        table inet t {
            set p {
                type inet_service
                size 16
                flags dynamic
            }
            set s4 {
                type ipv4_addr
                size 16
                flags dynamic,timeout
                timeout 1m
            }
            set s6 {
                type ipv6_addr
                size 16
                flags dynamic,timeout
                timeout 1m
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 9 add @p { udp dport counter }
                udp dport 9 update @s4 { ip daddr counter }
                udp dport 9 update @s6 { ip6 daddr counter }
            }
        }
        """;

    /// <summary>Rules writing each set with a limit: the sets' values change layout, so both programs are loaded anew onto new copies.</summary>
    const string OtherLists = """
        add rule inet t out udp dport 10 add @p { udp dport limit rate 1/hour burst 5 packets }
        add rule inet t out udp dport 10 update @s4 { ip daddr limit rate 1/hour burst 5 packets }
        add rule inet t out udp dport 10 update @s6 { ip6 daddr limit rate 1/hour burst 5 packets }
        """;

    [Theory]
    [InlineData("auto")]
    [InlineData("bpf-only")]
    public void BothProgramsElementsKeepTheirCountersThroughAReloadOntoNewCopies(string placement)
    {
        using var s = new PacketPathSetTrafficTests.Sides(placement);
        foreach (var ns in new[] { s.Kernel, s.Rig.Daemon.Ns })
            foreach (var a in new[] { "::2/128", "::3/128" })
                ns.Ip("-6", "addr", "add", a, "dev", "lo", "nodad");
        s.Apply(Ruleset);
        Assert.Contains("table inet t chain out: BPF", s.Rig.Explain());
        for (var i = 0; i < 2; i++) s.Send(9, "127.0.0.2", "::2", "::1");
        s.SameListing("table inet t");

        s.Apply(OtherLists);
        Assert.Contains("table inet t chain out: BPF", s.Rig.Explain());
        s.Send(9, "127.0.0.2", "::2");
        s.Send(10, "127.0.0.3", "::3");
        var listing = s.SameListing("table inet t");
        Assert.Contains("9 counter packets 8 bytes", listing);      // both families' packets on one element
        Assert.Contains("::2 counter packets 3 bytes", listing);

        // a second reload (the lists as they are now): carried again
        s.Apply("add rule inet t out udp dport 11 counter");
        s.Send(9, "127.0.0.2", "::1");
        s.Send(10, "127.0.0.3", "::3");
        listing = s.SameListing("table inet t");
        Assert.Contains("9 counter packets 10 bytes", listing);
    }
}
