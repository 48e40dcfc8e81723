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

    /// <summary>
    /// Kernel against bpfilterd (enforcing). A case marked `daemon-refuses` must instead be refused
    /// by bpfilterd as its directive says; its packets are compared kernel against kernel only.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void DaemonFiltersLikeTheKernel(string name)
    {
        var c = PacketCase.Load(name);
        var report = c.DaemonRefuses != null
            ? PacketRunner.CheckRefusal(c, sides.Daemon)
            : PacketRunner.RunAndCompare(c, sides.Kernel, sides.Daemon);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{sides.Daemon.DaemonLog}");
    }
}
