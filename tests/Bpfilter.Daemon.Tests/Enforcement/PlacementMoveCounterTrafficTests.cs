using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A chain that a commit moves between BPF and the kernel's nf_tables (a rule added that BPF cannot run, then deleted
/// again), compared with the kernel (6.18), where nothing moves: its unchanged rules and named counters keep their
/// counts. Before branch `placecarry` bpfilterd listed them from 0 after each move.
/// </summary>
public sealed class PlacementMoveCounterTrafficTests
{
    /// <summary>
    /// A netdev chain at lo's ingress (packets sent to 127.0.0.2 pass it): in BPF it runs as an XDP/tc program, so
    /// it moves back from the kernel when the rule BPF cannot run (`log group`, nflog) is deleted.
    /// </summary>
    internal const string Netdev = """
        table netdev t {
            counter named {
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 counter
                udp dport 12 counter name "named"
            }
        }
        """;

    /// <summary>What moves the chain to the kernel, and back: its own rule BPF cannot run (the chain does not lift), or
    /// another table's `meta nftrace set` (every base chain goes to the kernel; this one lifts all along).</summary>
    public static TheoryData<string, string?> Moves => new()
    {
        { "add rule netdev t in udp dport 14 log group 1", null },
        { "table netdev x {\n chain c {\n type filter hook ingress device \"lo\" priority 5; meta nftrace set 1\n }\n}", "delete table netdev x" },
    };

    [Theory]
    [MemberData(nameof(Moves))]
    public void CountsSurviveAMoveToTheKernelAndBack(string toKernel, string? back)
    {
        using var s = InBpf(Netdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        Assert.Contains("counter packets 3", s.SameListing("table netdev t"));

        ToKernel(s, toKernel);
        Assert.Contains("counter packets 3", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        Assert.Contains("counter packets 5", s.SameListing("table netdev t"));

        // the kernel's reset baseline of the named counter goes along too
        s.Succeeds("reset", "counters", "table", "netdev", "t");
        s.Send(12, "127.0.0.2");

        Back(s, back);
        var listing = s.SameListing("table netdev t");
        Assert.Contains("counter packets 6", listing);
        Assert.Contains("packets 1 bytes", listing);
        s.Send(12, "127.0.0.2");
        listing = s.SameListing("table netdev t");
        Assert.Contains("counter packets 7", listing);
        Assert.Contains("packets 2 bytes", listing);

        // and to the kernel once more: the counts BPF took over go back
        ToKernel(s, toKernel);
        Assert.Contains("counter packets 7", s.SameListing("table netdev t"));
    }

    /// <summary>The counts carried either way survive restarts (the kernel's in its rules, BPF's in the state file's ledger).</summary>
    [Fact]
    public void CarriedCountsSurviveRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Netdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        s.Apply("add rule netdev t in udp dport 14 log group 1");
        Assert.Equal(0, s.Rig.Daemon.Terminate());
        s.Rig.Daemon.Restart();
        Assert.Contains("counter packets 3", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2");
        s.Succeeds("reset", "counters", "table", "netdev", "t");
        s.Send(12, "127.0.0.2");
        s.Apply($"delete rule netdev t in handle {Handle(s, "log group 1")}");
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        var back = s.SameListing("table netdev t");
        Assert.Contains("counter packets 5", back);
        Assert.Contains("packets 1 bytes", back);
        s.Send(12, "127.0.0.2");
        Assert.Contains("counter packets 6", s.SameListing("table netdev t"));
    }

    /// <summary>
    /// An output chain moved to the kernel by `reject` (an ip table's reject runs in the kernel), and back to BPF when the
    /// rule is deleted: its BPF_NETFILTER link takes priority -1 beside the kernel's copy at 0 (before branch `nfback` the
    /// chain stayed in the kernel: the link could not take the priority the kernel's chain held, EBUSY).
    /// </summary>
    [Fact]
    public void CountsSurviveAMoveToTheKernelForReject()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Netdev.Replace("netdev", "ip").Replace("ingress device \"lo\"", "output"));
        Assert.Contains("table ip t chain in: BPF", s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        Assert.Contains("counter packets 3", s.SameListing());

        s.Apply("add rule ip t in udp dport 14 reject");
        Assert.Contains("table ip t chain in: kernel nf_tables", s.Rig.Explain());
        var moved = s.SameListing();
        Assert.Contains("counter packets 3", moved);
        Assert.DoesNotContain("packets 0", moved);
        s.Send(12, "127.0.0.2");
        s.Apply($"delete rule ip t in handle {Handle(s, "reject", "ip")}");
        var explain = s.Rig.Explain();
        Assert.True(explain.Contains("table ip t chain in: BPF") && explain.Contains("netfilter ipv4 output priority 0, link at priority -1"), explain + s.Rig.Daemon.Log);
        Assert.Contains("counter packets 4", s.SameListing());
        s.Send(12, "127.0.0.2", "127.0.0.3");
        Assert.Contains("counter packets 6", s.SameListing());
    }

    /// <summary>A rule quota created with `used`: the kernel keeps what it consumed.</summary>
    const string NetdevQuota = """
        table netdev t {
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota over 100000 bytes used 400 bytes
            }
        }
        """;

    /// <summary>
    /// A rule quota the kernel takes over from BPF is sent with what BPF consumed (NFTA_QUOTA_CONSUMED, `used` in a
    /// file); its start point stays the `used` it was created with. Back in BPF, its quota slot is set to what the
    /// kernel consumed. Before branch `quotamove` it listed its created `used` again after either move.
    /// </summary>
    [Theory]
    [MemberData(nameof(Moves))]
    public void ARuleQuotaSurvivesAMoveToTheKernelAndBack(string toKernel, string? back)
    {
        using var s = InBpf(NetdevQuota);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var before = Regex.Match(s.SameListing("table netdev t"), @"quota over 100000 bytes used (\d+) bytes");
        Assert.True(before.Success && before.Groups[1].Value != "400", before.Value);

        ToKernel(s, toKernel);
        Assert.Contains(before.Value, s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        var moved = Regex.Match(s.SameListing("table netdev t"), @"quota over 100000 bytes used (\d+) bytes");
        Assert.True(moved.Success && moved.Value != before.Value, moved.Value);

        // and back to BPF: its quota slot starts from what the kernel consumed (not from what it held before the move)
        Back(s, back);
        Assert.Contains(moved.Value, s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2");
        Assert.DoesNotContain(moved.Value, s.SameListing("table netdev t"));
    }

    /// <summary>Both sides (placement auto) with <paramref name="ruleset"/> applied, table netdev t's chain `in` running in BPF.</summary>
    internal static PacketPathSetTrafficTests.Sides InBpf(string ruleset)
    {
        var s = new PacketPathSetTrafficTests.Sides("auto");
        try
        {
            s.Apply(ruleset);
            Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Applies <paramref name="toKernel"/> (a <see cref="Moves"/> row's): table netdev t's chain `in` runs in the kernel then.</summary>
    internal static void ToKernel(PacketPathSetTrafficTests.Sides s, string toKernel)
    {
        s.Apply(toKernel);
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
    }

    /// <summary>Undoes <see cref="ToKernel"/> (<see cref="BackCommand"/>): `in` runs in BPF again.</summary>
    internal static void Back(PacketPathSetTrafficTests.Sides s, string? back)
    {
        s.Apply(BackCommand(s, back));
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
    }

    /// <summary>What undoes <see cref="ToKernel"/>: <paramref name="back"/> (the row's), else deleting the `log group 1` rule.</summary>
    internal static string BackCommand(PacketPathSetTrafficTests.Sides s, string? back) =>
        back ?? $"delete rule netdev t in handle {Handle(s, "log group 1")}";

    /// <summary>The handle of the rule <paramref name="what"/> in the kernel's listing (bpfilterd hands out the same).</summary>
    internal static string Handle(PacketPathSetTrafficTests.Sides s, string what, string family = "netdev")
    {
        var k = s.Kernel.Exec("nft", ["-a", "list", "chain", family, "t", "in"]);
        var m = Regex.Match(k.Stdout, Regex.Escape(what) + @" # handle (\d+)");
        Assert.True(m.Success, k.Stdout);
        return m.Groups[1].Value;
    }
}
