namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named counter, quota and limit by one name in one table, compared with the kernel (6.18) by listings with real
/// traffic. nf_tables keys its objects by table, type and name (nft_obj_lookup), so `counter x`, `quota x` and `limit x`
/// are three objects: each is listed, reset and carried across placement moves and restarts on its own. Before branch
/// `samename` bpfilterd looked both up by name: after three datagrams it listed `counter x { packets 0 bytes 87 }`
/// (the quota's bytes, no packets) where the kernel listed `packets 3 bytes 87`, in BPF and in the kernel alike.
/// </summary>
public sealed class SameNameObjectsTrafficTests
{
    /// <summary><paramref name="inKernel"/>: the chain also logs to a group, which runs in the kernel's nf_tables only.</summary>
    static string Ruleset(bool inKernel) => $$"""
        table inet t {
            counter x {
            }
            quota x {
                until 1000 bytes
            }
            limit x {
                rate 1000/second
            }
            chain c {
                type filter hook output priority 0; policy accept;
                udp dport 9 counter name "x" quota name "x" limit name "x"
                {{(inKernel ? "udp dport 14 log group 1" : "")}}
            }
        }
        """;

    // a datagram of `printf x`: 20 bytes of IPv4 header, 8 of UDP, 1 of data
    const int Datagram = 29;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ACounterAndAQuotaByOneNameAreListedResetAndMovedAsTheKernelDoes(bool inKernel)
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Ruleset(inKernel));
        Assert.Contains(inKernel ? "table inet t chain c: kernel nf_tables" : "table inet t chain c: BPF", s.Rig.Explain());
        s.Send(9, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var three = s.SameListing("table inet t");
        Assert.Contains($"packets 3 bytes {3 * Datagram}", three);
        Assert.Contains($"used {3 * Datagram} bytes", three);

        // each reset takes back its own type of object only
        s.SameOutput("reset", "counters");
        Assert.Contains($"used {3 * Datagram} bytes", s.SameListing("table inet t"));
        s.Send(9, "127.0.0.2");
        s.SameOutput("reset", "quotas");
        var reset = s.SameListing("table inet t");
        Assert.Contains($"packets 1 bytes {Datagram}", reset);
        Assert.DoesNotContain("used", reset);
        s.Send(9, "127.0.0.2", "127.0.0.3");
        Assert.Contains($"packets 3 bytes {3 * Datagram}", s.SameListing("table inet t"));
        s.SameOutput("reset", "counter", "inet", "t", "x");
        s.Send(9, "127.0.0.2");
        s.SameOutput("reset", "quota", "inet", "t", "x");
        s.Send(9, "127.0.0.2");
        var single = s.SameListing("table inet t");
        Assert.Contains($"packets 2 bytes {2 * Datagram}", single);
        Assert.Contains($"used {Datagram} bytes", single);

        // the state file keeps each object's state apart
        s.AcrossRestarts(() => s.SameListing("table inet t"), () =>
        {
            s.Send(9, "127.0.0.2");
            s.SameListing("table inet t");
        });

        // the chain moves to the other side: both objects go with it, each with its own state
        // (one transaction: the rule naming them goes on naming them, so each side hands its state to the other)
        s.Apply(inKernel
            ? "flush chain inet t c\nadd rule inet t c udp dport 9 counter name \"x\" quota name \"x\" limit name \"x\""
            : "add rule inet t c udp dport 14 log group 1");
        Assert.Contains(inKernel ? "table inet t chain c: BPF" : "table inet t chain c: kernel nf_tables", s.Rig.Explain());
        var moved = s.SameListing("table inet t");
        Assert.Contains($"packets 3 bytes {3 * Datagram}", moved);
        Assert.Contains($"used {2 * Datagram} bytes", moved);
        s.Send(9, "127.0.0.2");
        var after = s.SameListing("table inet t");
        Assert.Contains($"packets 4 bytes {4 * Datagram}", after);
        Assert.Contains($"used {3 * Datagram} bytes", after);
    }
}
