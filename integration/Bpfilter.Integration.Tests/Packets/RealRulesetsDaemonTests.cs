namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// Kernel against bpfilterd (enforcing) on the whole rulesets of corpus/rulesets/: each must load
/// through bfnt, list as the kernel lists it (counters included) and give the crafted packets the
/// kernel's verdicts, whatever runs in BPF and whatever the daemon places in the kernel's own
/// nf_tables (issue 7). Until kernel placement lands, bpfilterd refuses most of these rulesets,
/// and this theory fails on them: that failure is the acceptance criterion, not a flaw.
/// </summary>
public class RealRulesetsDaemonTests(SidesFixture sides) : IClassFixture<SidesFixture>
{
    [Theory]
    [MemberData(nameof(PacketCorpusTests.RealRulesets), MemberType = typeof(PacketCorpusTests))]
    public void DaemonRunsRealRulesetsLikeTheKernel(string name)
    {
        var c = PacketCase.LoadFrom(PacketCase.RulesetsDirectory, name);
        var daemon = sides.Side(SidesFixture.Role.Daemon, c.Topology);
        var report = PacketRunner.RunAndCompare(c, sides.Side(SidesFixture.Role.Kernel, c.Topology), daemon);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{daemon.DaemonLog}");
    }
}
