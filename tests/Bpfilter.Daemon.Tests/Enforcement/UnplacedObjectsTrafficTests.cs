namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named counter and a named quota no placed chain names any more, compared with the kernel (6.18) by listings with real
/// traffic. nf_tables keeps an object's count (a quota's `used`) while no rule names it, lists and resets it, and a rule naming it
/// again counts on from there. Before branch `orphancount` bpfilterd lost it: after two datagrams and `nft flush chain inet t c`
/// it listed `counter x { packets 0 bytes 0 }` where the kernel listed `packets 2 bytes 58` (and `quota x` without its `used`),
/// from BPF and from the kernel alike, and a rule naming them again counted from nothing.
/// </summary>
public sealed class UnplacedObjectsTrafficTests
{
    /// <summary><paramref name="inKernel"/>: the chain also logs to a group, which runs in the kernel's nf_tables only.</summary>
    static string Ruleset(bool inKernel) => $$"""
        table inet t {
            counter x {
            }
            quota x {
                until 1000 bytes
            }
            chain c {
                type filter hook output priority 0; policy accept;
                udp dport 9 counter name "x" quota name "x"
                {{(inKernel ? "udp dport 14 log group 1" : "")}}
            }
        }
        """;

    const string Log = "add rule inet t c udp dport 14 log group 1";
    const string Naming = "add rule inet t c udp dport 9 counter name \"x\" quota name \"x\"";

    // a datagram of `printf x`: 20 bytes of IPv4 header, 8 of UDP, 1 of data
    const int Datagram = 29;

    /// <param name="inKernel">where the chain naming the objects runs first</param>
    /// <param name="logStays">the flush keeps the chain's log rule (its table stays in the kernel, without the objects), else it leaves nothing</param>
    /// <param name="backInKernel">where the chain runs when a rule names the objects again</param>
    [Theory]
    [InlineData(false, false, false)]
    [InlineData(false, false, true)]
    [InlineData(true, false, false)]
    [InlineData(true, false, true)]
    [InlineData(true, true, true)]
    public void ObjectsNoPlacedRuleNamesKeepTheirStateAsTheKernelDoes(bool inKernel, bool logStays, bool backInKernel)
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Ruleset(inKernel));
        s.Send(9, "127.0.0.2", "127.0.0.3");
        Assert.Contains($"packets 2 bytes {2 * Datagram}", s.SameListing("table inet t"));

        // no rule names them: their state stays, and nothing counts it on
        s.Apply(logStays ? $"flush chain inet t c\n{Log}" : "flush chain inet t c");
        Assert.Contains(logStays ? "table inet t chain c: kernel nf_tables" : "table inet t chain c: BPF", s.Rig.Explain());
        s.Send(9, "127.0.0.2");
        var kept = s.SameListing("table inet t");
        Assert.Contains($"packets 2 bytes {2 * Datagram}", kept);
        Assert.Contains($"used {2 * Datagram} bytes", kept);

        // reset while unnamed: the quota from nothing, the counter keeps its count
        s.SameOutput("reset", "quota", "inet", "t", "x");
        Assert.DoesNotContain("used", s.SameListing("table inet t"));
        s.AcrossRestarts(() => s.SameListing("table inet t"), () => Assert.Contains($"packets 2 bytes {2 * Datagram}", s.SameListing("table inet t")));

        // a rule names them again: they count on from their state
        s.Apply(backInKernel ? $"{Naming}\n{(logStays ? "" : Log)}" : Naming);
        Assert.Contains(backInKernel ? "table inet t chain c: kernel nf_tables" : "table inet t chain c: BPF", s.Rig.Explain());
        s.Send(9, "127.0.0.2");
        var again = s.SameListing("table inet t");
        Assert.Contains($"packets 3 bytes {3 * Datagram}", again);
        Assert.Contains($"used {Datagram} bytes", again);
        s.AcrossRestarts(() => s.SameListing("table inet t"), () =>
        {
            s.Send(9, "127.0.0.2");
            Assert.Contains($"packets 4 bytes {4 * Datagram}", s.SameListing("table inet t"));
        });
    }
}
