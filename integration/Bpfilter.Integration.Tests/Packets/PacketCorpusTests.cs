namespace Bpfilter.Integration.Tests.Packets;

/// <summary>Two topologies built once for all cases of a test class, disposed at its end.</summary>
public sealed class SidesFixture : IDisposable
{
    readonly Lazy<FirewallSide> _kernel = new(FirewallSide.Kernel);
    readonly Lazy<FirewallSide> _kernel2 = new(FirewallSide.Kernel);
    readonly Lazy<FirewallSide> _daemon = new(FirewallSide.Daemon);

    public FirewallSide Kernel => _kernel.Value;
    public FirewallSide SecondKernel => _kernel2.Value;
    public FirewallSide Daemon => _daemon.Value;

    public void Dispose()
    {
        foreach (var l in new[] { _daemon, _kernel2, _kernel })
            if (l.IsValueCreated) l.Value.Dispose();
    }
}

/// <summary>
/// Skipped unless BFNT_PACKETS_DAEMON=1: bpfilterd does not yet compile chains into BPF, so it
/// cannot filter packets. The kernel-against-kernel theory runs the same cases for real meanwhile.
/// </summary>
public sealed class DaemonPacketTheoryAttribute : TheoryAttribute
{
    public DaemonPacketTheoryAttribute()
    {
        if (Environment.GetEnvironmentVariable("BFNT_PACKETS_DAEMON") != "1")
            Skip = "enforcement not wired yet (BFNT_PACKETS_DAEMON=1 runs it)";
    }
}

/// <summary>
/// The differential packet tests: each case of corpus/packets/ loaded into the kernel's nf_tables
/// in one peer—fw—back topology and into the candidate in another; the same crafted packets must
/// be delivered or not alike, and `nft list ruleset` (counters included) must print the same.
/// </summary>
public class PacketCorpusTests(SidesFixture sides) : IClassFixture<SidesFixture>
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var n in PacketCase.AllNames()) data.Add(n);
        return data;
    }

    /// <summary>Kernel against kernel: the corpus, the crafter and the topology are deterministic and the expectations right.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelAgreesWithItself(string name)
    {
        var report = PacketRunner.RunAndCompare(PacketCase.Load(name), sides.Kernel, sides.SecondKernel);
        Assert.True(report.Length == 0, report);
    }

    [DaemonPacketTheory]
    [MemberData(nameof(Cases))]
    public void DaemonFiltersLikeTheKernel(string name)
    {
        var report = PacketRunner.RunAndCompare(PacketCase.Load(name), sides.Kernel, sides.Daemon);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{sides.Daemon.DaemonLog}");
    }
}
