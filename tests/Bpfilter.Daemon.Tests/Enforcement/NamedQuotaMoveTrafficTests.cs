using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A named quota (`quota q { ... }` spent by `quota name "q"`) whose only chain a commit moves between BPF and the
/// kernel's nf_tables, compared with the kernel (6.18), where nothing moves: the object keeps what it consumed. Measured
/// there: `used 400` and three 29-byte datagrams list `used 487`; `reset quotas` lists nothing used, then one datagram
/// `used 29`. Before branch `namedquotamove` bpfilterd listed its created `used 400` again after either move.
/// </summary>
public sealed class NamedQuotaMoveTrafficTests
{
    const string Netdev = """
        table netdev t {
            quota q {
                over 100000 bytes used 400 bytes
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota name "q"
            }
        }
        """;

    static readonly Regex Used = new(@"quota q \{\s+over 100000 bytes( used \d+ bytes)?\s+\}");

    /// <summary>The named quota's listing on both sides (they must be equal), as `over 100000 bytes used N bytes`.</summary>
    static string Quota(PacketPathSetTrafficTests.Sides s, string table = "table netdev t")
    {
        var m = Used.Match(s.SameListing(table));
        Assert.True(m.Success, s.SameListing(table));
        s.SameOutput("list", "quotas");
        return m.Value;
    }

    [Theory]
    [MemberData(nameof(PlacementMoveCounterTrafficTests.Moves), MemberType = typeof(PlacementMoveCounterTrafficTests))]
    public void ANamedQuotaSurvivesAMoveToTheKernelAndBack(string toKernel, string? back)
    {
        using var s = PlacementMoveCounterTrafficTests.InBpf(Netdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var before = Quota(s);
        Assert.DoesNotContain("used 400 bytes", before);

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Equal(before, Quota(s));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        var moved = Quota(s);
        Assert.NotEqual(before, moved);

        // back to BPF: its slot starts from what the kernel consumed
        PlacementMoveCounterTrafficTests.Back(s, back);
        Assert.Equal(moved, Quota(s));
        s.Send(12, "127.0.0.2");
        var spent = Quota(s);
        Assert.NotEqual(moved, spent);

        // reset in BPF, then to the kernel once more: it goes on from what BPF consumed since the reset
        s.SameOutput("reset", "quotas");
        s.Send(12, "127.0.0.2");
        var sinceReset = Quota(s);
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Equal(sinceReset, Quota(s));
        s.Send(12, "127.0.0.2");
        Quota(s);
    }

    /// <summary>A named quota carried either way survives restarts: the kernel's in its object, BPF's in the pinned quota map.</summary>
    [Fact]
    public void ACarriedNamedQuotaSurvivesRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Netdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        s.Apply("add rule netdev t in udp dport 14 log group 1");
        Assert.Equal(0, s.Rig.Daemon.Terminate());
        s.Rig.Daemon.Restart();
        var moved = Quota(s);
        Assert.DoesNotContain("used 400 bytes", moved);
        s.Send(12, "127.0.0.2");
        s.Apply($"delete rule netdev t in handle {PlacementMoveCounterTrafficTests.Handle(s, "log group 1")}");
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        var back = Quota(s);
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        Assert.Equal(back, Quota(s));
        s.Send(12, "127.0.0.2");
        Assert.NotEqual(back, Quota(s));
    }

    /// <summary>An ip output chain moved to the kernel by `reject` (it stays there: see PlacementMoveCounterTrafficTests).</summary>
    [Fact]
    public void ANamedQuotaSurvivesAMoveToTheKernelForReject()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Netdev.Replace("netdev", "ip").Replace("ingress device \"lo\"", "output"));
        Assert.Contains("table ip t chain in: BPF", s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var before = Quota(s, "table ip t");
        Assert.DoesNotContain("used 400 bytes", before);

        s.Apply("add rule ip t in udp dport 14 reject");
        Assert.Contains("table ip t chain in: kernel nf_tables", s.Rig.Explain());
        Assert.Equal(before, Quota(s, "table ip t"));
        s.Send(12, "127.0.0.2");
        Assert.NotEqual(before, Quota(s, "table ip t"));
    }
}
