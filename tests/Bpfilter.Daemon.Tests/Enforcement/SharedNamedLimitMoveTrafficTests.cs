namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// <see cref="SharedLimitMoveTrafficTests"/> for limit objects (`limit name`): BPF drains them, an ip `reject` rule moves
/// the chain to the kernel's nf_tables, compared with the kernel (6.18), where nothing moves. The kernel copy's rules run
/// BPF's bucket for the object (the xt_bpf match on its slot) instead of naming a kernel object, which would start full.
/// Two base chains name `l`: one object's state is one bucket, whichever side and chain spends it. Every limit is
/// `rate 1/minute` (nothing refills within a test); the counter after it counts what it let through.
/// </summary>
public sealed class SharedNamedLimitMoveTrafficTests
{
    const string Ruleset = """
        table ip t {
            limit l { rate 1/minute burst 3 packets }
            limit o { rate over 1/minute burst 2 packets }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 limit name "l" counter
                udp dport 13 limit name "o" counter
            }
            chain late {
                type filter hook output priority 10; policy accept;
                udp dport 15 limit name "l" counter
            }
        }
        """;

    static readonly int[] Ports = [12, 13, 15];

    static void Send(PacketPathSetTrafficTests.Sides s, int packets, params int[] ports)
    {
        foreach (var port in ports.Length > 0 ? ports : Ports) s.Send(port, Enumerable.Repeat("127.0.0.2", packets).ToArray());
    }

    /// <summary>The ruleset in BPF, 5 packets per port, then the `reject` rule that moves both chains to the kernel.</summary>
    static void DrainAndMove(PacketPathSetTrafficTests.Sides s)
    {
        s.Apply(Ruleset);
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        Send(s, 5);
        Assert.Equal("kernel 12:3 13:3 15:0 | bpfilterd 12:3 13:3 15:0", SharedLimitMoveTrafficTests.Accepted(s));
        s.Apply("add rule ip t out udp dport 14 reject");
        Assert.Contains("table ip t chain out: kernel nf_tables", s.Rig.Explain());
        Assert.Contains("table ip t chain late: kernel nf_tables", s.Rig.Explain());
    }

    [Fact]
    public void ALimitObjectBpfDrainedKeepsItsBucketWhenItsChainsMoveToTheKernelAndBack()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        DrainAndMove(s);
        Send(s, 3);
        Assert.Equal("kernel 12:3 13:6 15:0 | bpfilterd 12:3 13:6 15:0", SharedLimitMoveTrafficTests.Accepted(s));
        Assert.DoesNotContain("limit moved to the kernel's nf_tables with a full bucket", s.Rig.Explain());

        s.Apply($"delete rule ip t out handle {s.SameHandle("out", "udp dport 14")}");
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        Send(s, 3);
        Assert.Equal("kernel 12:3 13:9 15:0 | bpfilterd 12:3 13:9 15:0", SharedLimitMoveTrafficTests.Accepted(s));
    }

    [Fact]
    public void AKernelCopyRunningBpfsBucketForALimitObjectKeepsItThroughARestart()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        DrainAndMove(s);
        s.AcrossRestarts(
            () => s.Apply("add rule ip t out udp dport 16 counter"),
            () => s.Apply("add rule ip t out udp dport 17 counter"));
        // the kernel's table taken over as it runs (it holds neither object), not made anew
        Assert.DoesNotContain("other(s) keep running until this transaction replaces or deletes them", s.Rig.Daemon.Log);
        Send(s, 3);
        Assert.Equal("kernel 12:3 13:6 15:0 | bpfilterd 12:3 13:6 15:0", SharedLimitMoveTrafficTests.Accepted(s));
    }

    /// <summary>No rule names `l` for a commit (BPF keeps its bucket), then a rule of the kernel-placed chain names it again.</summary>
    [Fact]
    public void ALimitObjectNamedAgainInAKernelChainGoesOnFromBpfsBucket()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        DrainAndMove(s);
        s.Apply($"delete rule ip t out handle {s.SameHandle("out", "udp dport 12")}\n" +
            $"delete rule ip t late handle {s.SameHandle("late", "udp dport 15")}");
        s.Apply("add rule ip t out udp dport 16 limit name \"l\" counter");
        Assert.Contains("table ip t chain out: kernel nf_tables", s.Rig.Explain());
        Send(s, 3, 16, 13);
        Assert.Equal("kernel 13:6 16:0 | bpfilterd 13:6 16:0", SharedLimitMoveTrafficTests.Accepted(s));
    }

    /// <summary>
    /// An object map of limits comes to the kernel copy: any of its elements may name `l`, and its lookups reach only the
    /// kernel's object, so `l` goes back to being the kernel's: its rules are sent again naming it (the table is made
    /// anew), one bucket for all, which starts full (named in `bpfilterd explain`, as any limit moved with a bucket BPF had
    /// not full). Before, the rules kept running BPF's drained bucket while the map's lookups ran the kernel's new one.
    /// </summary>
    [Fact]
    public void AnObjectMapOfLimitsInTheKernelCopyMakesTheObjectTheKernelsAgain()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        DrainAndMove(s);
        s.Apply("add map ip t lm { type ipv4_addr : limit; elements = { 127.0.0.3 : \"l\" } }\n" +
            "add rule ip t out udp dport 18 limit name ip daddr map @lm counter");
        Assert.Contains("ip t object l: limit moved to the kernel's nf_tables with a full bucket", s.Rig.Explain());
        Send(s, 3, 12, 15);
        Assert.Equal("kernel 12:3 13:3 18:0 15:0 | bpfilterd 12:6 13:3 18:0 15:0", SharedLimitMoveTrafficTests.Accepted(s));
    }
}
