using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A rule's limit BPF drained, its chain moved to the kernel's nf_tables by an ip `reject` rule, compared with the kernel
/// (6.18), where nothing moves. The kernel copy of the limit runs BPF's own bucket (an xt_bpf match, through nft_compat,
/// on a socket filter that runs nft_limit's token bucket on the shared limit map), so the move keeps the bucket. Before,
/// the kernel copy was a `limit` of its own, which nft_limit_init makes full: bpfilterd let 12:6 through where the kernel
/// let 12:3. Every limit is `rate 1/minute` (nothing refills within a test); the counter after it counts what it let through.
/// </summary>
public sealed class SharedLimitMoveTrafficTests
{
    const string Ruleset = """
        table ip t {
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 limit rate 1/minute burst 3 packets counter
                udp dport 13 limit rate over 1/minute burst 2 packets counter
                udp dport 15 limit rate 100 bytes/minute counter
            }
        }
        """;

    static readonly int[] Ports = [12, 13, 15];

    /// <summary>Each side's counts of the packets its limits let through, per port: "kernel 12:3 13:3 15:3 | bpfilterd ...".</summary>
    internal static string Accepted(PacketPathSetTrafficTests.Sides s)
    {
        var (k, d) = s.Command("list", "table", "ip", "t");
        Assert.True(k.Exit == 0 && d.Exit == 0, $"{k.Stderr} {d.Stderr}");
        static string Counts(string listing) => string.Join(" ",
            Regex.Matches(listing, @"udp dport (\d+) limit .*counter packets (\d+)").Select(m => $"{m.Groups[1].Value}:{m.Groups[2].Value}"));
        return $"kernel {Counts(k.Stdout)} | bpfilterd {Counts(d.Stdout)}";
    }

    static void Send(PacketPathSetTrafficTests.Sides s, int packets)
    {
        foreach (var port in Ports) s.Send(port, Enumerable.Repeat("127.0.0.2", packets).ToArray());
    }

    [Fact]
    public void ALimitBpfDrainedKeepsItsBucketWhenItsChainMovesToTheKernelAndBack()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Ruleset);
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        Send(s, 5);
        var drained = Accepted(s);
        Assert.Equal("kernel 12:3 13:3 15:3 | bpfilterd 12:3 13:3 15:3", drained);

        s.Apply("add rule ip t out udp dport 14 reject");
        Assert.Contains("table ip t chain out: kernel nf_tables", s.Rig.Explain());
        Send(s, 3);
        Assert.Equal("kernel 12:3 13:6 15:3 | bpfilterd 12:3 13:6 15:3", Accepted(s));
        Assert.DoesNotContain("limit moved to the kernel's nf_tables with a full bucket", s.Rig.Explain());

        // and back: the bucket is the same one, so BPF goes on from what the kernel copy left (held or not)
        var handle = s.SameHandle("out", "udp dport 14");
        s.Apply($"delete rule ip t out handle {handle}");
        Send(s, 3);
        Assert.Equal("kernel 12:3 13:9 15:3 | bpfilterd 12:3 13:9 15:3", Accepted(s));
    }

    [Fact]
    public void AKernelCopyRunningBpfsBucketKeepsItThroughARestart()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Ruleset);
        Send(s, 5);
        s.Apply("add rule ip t out udp dport 14 reject");
        Assert.Contains("table ip t chain out: kernel nf_tables", s.Rig.Explain());
        s.AcrossRestarts(
            () => s.Apply("add rule ip t out udp dport 16 counter"),
            () => s.Apply("add rule ip t out udp dport 17 counter"));
        Send(s, 3);
        Assert.Equal("kernel 12:3 13:6 15:3 | bpfilterd 12:3 13:6 15:3", Accepted(s));
    }
}
