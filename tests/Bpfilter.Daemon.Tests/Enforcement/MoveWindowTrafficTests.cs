using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Packets that arrive while a commit moves a chain between BPF and the kernel's nf_tables: a steady stream of
/// counted datagrams on each side while `nft` moves the chain, then each side's count against what its stream sent.
/// In the kernel nothing moves and every packet is counted once; bpfilterd reads BPF's counts to send them with the
/// kernel's new rules, and packets BPF counted after that read but before the kernel applied the batch are carried too.
/// Before branch `moveedges` about a fifth of them was lost (bpfilterd listed 6687 and 6808 for 8332 sent).
/// </summary>
public sealed partial class MoveWindowTrafficTests
{
    // PlacementMoveCounterTrafficTests.Netdev: lo's ingress, a rule counter and a named counter for udp dport 12
    [GeneratedRegex(@"udp dport 12 counter packets (\d+) bytes")]
    private static partial Regex RuleCount();

    [GeneratedRegex(@"counter named \{\s*packets (\d+) bytes")]
    private static partial Regex NamedCount();

    /// <summary>
    /// A stream of one-byte datagrams to 127.0.0.2 port 12 (through lo's ingress), each from a socket of its own,
    /// until <paramref name="stop"/> exists; prints how many it sent.
    /// </summary>
    static BackgroundProcess Stream(NetNs ns, string stop) => ns.Start("bash", ["-c",
        $"n=0; while [ ! -e {stop} ]; do printf x > /dev/udp/127.0.0.2/12 && n=$((n+1)); done; echo $n"]);

    /// <summary>
    /// Runs <paramref name="move"/> on both sides while each sends a stream (started before it, stopped a while after it),
    /// and gives how many datagrams each side's stream sent.
    /// </summary>
    static (long Kernel, long Daemon) StreamDuring(PacketPathSetTrafficTests.Sides s, string move)
    {
        var stop = Path.Combine(Path.GetTempPath(), $"bfnt-movewindow-{Guid.NewGuid():N}");
        using var k = Stream(s.Kernel, stop);
        using var d = Stream(s.Rig.Daemon.Ns, stop);
        try
        {
            Thread.Sleep(300);
            s.Apply(move);
            Thread.Sleep(300);
        }
        finally
        {
            File.WriteAllText(stop, "");
        }
        // each stream ends by itself once it sees the file (Stop would SIGTERM one that has not yet)
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(k.HasExited && d.HasExited) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        var (kr, dr) = (k.Stop(), d.Stop());
        File.Delete(stop);
        Assert.True(kr.Exit == 0 && dr.Exit == 0, $"{kr.Stderr} {dr.Stderr}");
        return (long.Parse(kr.Stdout.Trim()), long.Parse(dr.Stdout.Trim()));
    }

    /// <summary>The rule's and the named counter's packets on each side, asserted equal to what each side's streams sent.</summary>
    /// <param name="bound">how far the daemon said the carry may be off (<see cref="EarlyBound"/>), besides the slack</param>
    static void CountedAsSent(PacketPathSetTrafficTests.Sides s, long kernelSent, long daemonSent, string when, string family = "netdev", long bound = 0)
    {
        var (k, d) = s.Command("list", "table", family, "t");
        Assert.True(k.Exit == 0 && d.Exit == 0, $"{k.Stderr} {d.Stderr}");
        long Of(Regex r, string listing) => long.Parse(r.Match(listing).Groups[1].Value);
        var report = $"{when}: kernel sent {kernelSent}, rule {Of(RuleCount(), k.Stdout)}, named {Of(NamedCount(), k.Stdout)}; " +
            $"bpfilterd sent {daemonSent}, rule {Of(RuleCount(), d.Stdout)}, named {Of(NamedCount(), d.Stdout)}";
        Console.WriteLine(report);
        Assert.True(Of(RuleCount(), k.Stdout) == kernelSent && Of(NamedCount(), k.Stdout) == kernelSent, report);
        // a packet or two in flight while the two sides' totals are read
        Assert.True(Math.Abs(Of(RuleCount(), d.Stdout) - daemonSent) <= Slack + bound && Math.Abs(Of(NamedCount(), d.Stdout) - daemonSent) <= Slack + bound,
            $"{report}\n{s.Rig.Daemon.Log}");
    }

    /// <summary>How far bpfilterd's count may be from what was sent (before the carry it lost about a fifth of 8000).</summary>
    const long Slack = 20;

    [GeneratedRegex(@"early install: (\d+) counter\(s\) carried exactly .*, (\d+) to within (\d+) packet\(s\)")]
    private static partial Regex EarlyCarry();

    /// <summary>
    /// The early install's counting, as the daemon logged it: how many counters it carried exactly, and how many only to
    /// within how many packets (the kernel's count read between two reads of the early programs').
    /// </summary>
    internal static (int Exact, int Estimated, long Bound) EarlyBound(string log)
    {
        var m = EarlyCarry().Matches(log);
        Assert.True(m.Count == 1, log);
        return (int.Parse(m[0].Groups[1].Value), int.Parse(m[0].Groups[2].Value), long.Parse(m[0].Groups[3].Value));
    }

    [Fact]
    public void PacketsCountedWhileAChainMovesAreCountedOnce()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(PlacementMoveCounterTrafficTests.Netdev);
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());

        var (k1, d1) = StreamDuring(s, "add rule netdev t in udp dport 14 log group 1");
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        CountedAsSent(s, k1, d1, "to the kernel");
    }

    /// <summary>
    /// An inet input chain moved back from the kernel (its `reject` deleted) while the streams run: its links take
    /// priority -1 beside the kernel's copy at 0 and filter from before the kernel commit, and their counters start from
    /// the kernel's count read beside theirs, so the packets both counted meanwhile are counted once. Before branch
    /// `nfback` the chain stayed in the kernel. Neither counter's rule drops: the kernel's copy (after the link at -1)
    /// counts what the link lets through, so the carry is exact only to the bound the daemon logs (branch `earlyinstall`:
    /// once 247 short of 10,161 under the midpoint estimate, which then claimed no bound).
    /// </summary>
    [Fact]
    public void PacketsCountedWhileAnInetChainMovesBackAreCountedOnce()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(PlacementMoveCounterTrafficTests.Netdev.Replace("netdev", "inet").Replace("ingress device \"lo\"", "input"));
        s.Apply("add rule inet t in udp dport 14 reject");
        Assert.Contains("table inet t chain in: kernel nf_tables", s.Rig.Explain());

        var (k1, d1) = StreamDuring(s, $"delete rule inet t in handle {PlacementMoveCounterTrafficTests.Handle(s, "reject", "inet")}");
        var explain = s.Rig.Explain();
        Assert.True(explain.Contains("table inet t chain in: BPF"), explain + s.Rig.Daemon.Log);
        var (exact, estimated, bound) = EarlyBound(s.Rig.Daemon.Log);
        Console.WriteLine($"early install: {exact} exact, {estimated} to within {bound} packet(s)");
        Assert.True(exact == 0 && estimated == 2, s.Rig.Daemon.Log);
        CountedAsSent(s, k1, d1, "back to BPF", "inet", bound);
    }
}
