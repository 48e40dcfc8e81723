using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A limit object the kernel's copy holds while no rule names it any more, compared with the kernel (6.18) with real traffic.
/// nf_tables keeps the object's bucket while its table holds it, and a rule naming it again goes on from there. Before (issue
/// 8), the kernel copy deleted the object with the last rule naming it, and a rule naming it again made it anew, full:
/// bpfilterd let 13:3 through where the kernel let 13:0. The limit is `rate 1/minute burst 3 packets` (nothing refills
/// within a test); the chain logs to a group, which runs in the kernel's nf_tables only.
/// </summary>
public sealed class KernelKeptLimitTrafficTests
{
    const string Ruleset = """
        table netdev t {
            limit l { rate 1/minute burst 3 packets }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 limit name "l" counter comment "drains"
                udp dport 14 log group 1 comment "kernel"
            }
        }
        """;

    const string Names = "add rule netdev t in udp dport 13 limit name \"l\" counter";
    const string Log = "add rule netdev t in udp dport 14 log group 1";

    /// <summary>Each side's counts of the packets the limit let through, per port: "kernel 13:0 | bpfilterd 13:0".</summary>
    static string Accepted(PacketPathSetTrafficTests.Sides s)
    {
        var (k, d) = s.Command("list", "table", "netdev", "t");
        Assert.True(k.Exit == 0 && d.Exit == 0, $"{k.Stderr} {d.Stderr}");
        static string Counts(string listing) => string.Join(" ",
            Regex.Matches(listing, @"udp dport (\d+) limit .*counter packets (\d+)").Select(m => $"{m.Groups[1].Value}:{m.Groups[2].Value}"));
        return $"kernel {Counts(k.Stdout)} | bpfilterd {Counts(d.Stdout)}";
    }

    static string Delete(PacketPathSetTrafficTests.Sides s, string comment) =>
        $"delete rule netdev t in handle {PlacementMoveCounterTrafficTests.Handle(s, $"comment \"{comment}\"")}";

    /// <param name="logStays">the chain keeps its log rule while no rule names the limit (it stays in the kernel), else it moves to BPF</param>
    /// <param name="backInKernel">the rule naming the limit again comes with a log rule (its chain runs in the kernel), else alone</param>
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void ALimitObjectNoRuleNamesKeepsItsBucketInTheKernelCopy(bool logStays, bool backInKernel)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Ruleset);
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(12, Enumerable.Repeat("127.0.0.2", 5).ToArray());
        Assert.Equal("kernel 12:3 | bpfilterd 12:3", Accepted(s));

        s.Apply(logStays ? Delete(s, "drains") : $"{Delete(s, "drains")}\n{Delete(s, "kernel")}");
        Assert.Contains(logStays ? "table netdev t chain in: kernel nf_tables" : "table netdev t chain in: BPF", s.Rig.Explain());
        Assert.Contains("limit l {", s.Rig.KernelRuleset()); // no rule names it: the kernel copy keeps it

        s.Apply(backInKernel && !logStays ? $"{Names}\n{Log}" : Names);
        // alone in a chain BPF would run, the rule stays in the kernel with the limit, whose bucket there is not known full
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(13, Enumerable.Repeat("127.0.0.2", 3).ToArray());
        Assert.Equal("kernel 13:0 | bpfilterd 13:0", Accepted(s));
    }

    /// <summary>
    /// Across a clean stop and a SIGKILL of bpfilterd: the restarted daemon adopts the kernel copy with the limit no rule names
    /// (it learns it there: the first placement of a restart has no kernel copy to keep it from) instead of making it anew.
    /// </summary>
    [Fact]
    public void ALimitObjectNoRuleNamesKeepsItsBucketAcrossRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        s.Apply(Ruleset);
        s.Send(12, Enumerable.Repeat("127.0.0.2", 5).ToArray());
        s.Apply(Delete(s, "drains"));
        s.AcrossRestarts(() => Assert.Contains("limit l {", s.Rig.KernelRuleset()), () => Assert.Contains("limit l {", s.Rig.KernelRuleset()));
        Assert.Contains("restart: adopted 1 kernel nf_tables table(s) as they run", s.Rig.Daemon.Log);

        s.Apply(Names);
        s.Send(13, Enumerable.Repeat("127.0.0.2", 3).ToArray());
        Assert.Equal("kernel 13:0 | bpfilterd 13:0", Accepted(s));
    }

    /// <summary>The user deletes the limit no rule names: the kernel copy does too, and one made again starts full on both sides.</summary>
    [Fact]
    public void ALimitObjectTheUserDeletesLeavesTheKernelCopy()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Ruleset);
        s.Send(12, Enumerable.Repeat("127.0.0.2", 5).ToArray());
        s.Apply(Delete(s, "drains"));
        Assert.Contains("limit l {", s.Rig.KernelRuleset());

        s.Apply("delete limit netdev t l");
        Assert.DoesNotContain("limit l {", s.Rig.KernelRuleset());
        s.Apply($"add limit netdev t l {{ rate 1/minute burst 3 packets }}\n{Names}");
        Assert.Contains("table netdev t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(13, Enumerable.Repeat("127.0.0.2", 5).ToArray());
        Assert.Equal("kernel 13:3 | bpfilterd 13:3", Accepted(s));
    }
}
