namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// The topologies a test class needs, each built on first use and reused for all its cases, disposed
/// at its end: the reference kernel, a second kernel and bpfilterd, per topology kind.
/// </summary>
public sealed class SidesFixture : IDisposable
{
    /// <summary>DaemonBpfOnly: bpfilterd with --placement bpf-only (refuses what BPF cannot run).</summary>
    public enum Role { Kernel, SecondKernel, Daemon, DaemonBpfOnly }

    readonly Dictionary<(Role, TopologyKind), FirewallSide> _sides = [];
    readonly List<FirewallSide> _order = [];

    public FirewallSide Kernel => Side(Role.Kernel, TopologyKind.Routed);
    public FirewallSide SecondKernel => Side(Role.SecondKernel, TopologyKind.Routed);
    public FirewallSide Daemon => Side(Role.Daemon, TopologyKind.Routed);

    public FirewallSide Side(Role role, TopologyKind kind)
    {
        lock (_sides)
        {
            if (_sides.TryGetValue((role, kind), out var side)) return side;
            side = role switch
            {
                Role.Daemon => FirewallSide.Daemon(kind),
                Role.DaemonBpfOnly => FirewallSide.Daemon(kind, ["--placement", "bpf-only"]),
                _ => FirewallSide.Kernel(kind),
            };
            _sides[(role, kind)] = side;
            _order.Add(side);
            return side;
        }
    }

    public void Dispose()
    {
        for (int i = _order.Count - 1; i >= 0; i--) _order[i].Dispose();
        _order.Clear();
        _sides.Clear();
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

    public static TheoryData<string> RealRulesets()
    {
        var data = new TheoryData<string>();
        foreach (var n in PacketCase.NamesIn(PacketCase.RulesetsDirectory)) data.Add(n);
        return data;
    }

    /// <summary>
    /// Kernel against kernel on the whole rulesets of corpus/rulesets/ (conntrack, NAT, arp and
    /// bridge tables, policy routing): proves those cases, and the runner's extensions, right.
    /// </summary>
    [Theory]
    [MemberData(nameof(RealRulesets))]
    public void KernelAgreesWithItselfOnRealRulesets(string name)
    {
        var c = PacketCase.LoadFrom(PacketCase.RulesetsDirectory, name);
        var report = PacketRunner.RunAndCompare(c, sides.Side(SidesFixture.Role.Kernel, c.Topology), sides.Side(SidesFixture.Role.SecondKernel, c.Topology));
        Assert.True(report.Length == 0, report);
    }

    /// <summary>
    /// Kernel against bpfilterd (enforcing, default placement): every case loads, whatever runs in BPF
    /// and whatever bpfilterd places in the kernel's nf_tables, and gets the kernel's verdicts and counters.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void DaemonFiltersLikeTheKernel(string name)
    {
        var c = PacketCase.Load(name);
        var report = PacketRunner.RunAndCompare(c, sides.Kernel, sides.Daemon);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{sides.Daemon.DaemonLog}");
    }

    /// <summary>
    /// The conntrack-key cases with bpfilterd --placement bpf-only: every chain runs in BPF (or the load would be
    /// refused), reading the entry and its tuples the way nft_ct does, and gets the kernel's verdicts and counters.
    /// </summary>
    [Theory]
    [InlineData("ip-forward-ct-tuple")]
    [InlineData("inet-forward-ct-tuple")]
    [InlineData("inet-forward-ct-label")]
    [InlineData("ip-forward-ct-label-none")]
    public void BpfOnlyReadsConntrackLikeTheKernel(string name)
    {
        var c = PacketCase.Load(name);
        var side = sides.Side(SidesFixture.Role.DaemonBpfOnly, TopologyKind.Routed);
        var report = PacketRunner.RunAndCompare(c, sides.Kernel, side);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{side.DaemonLog}");
    }

    /// <summary>
    /// Set state with bpfilterd --placement bpf-only: the chain runs in BPF (or the load would be refused), and the
    /// sets list as the kernel's: every element's counter (`ip-input-element-counters`), the elements packets
    /// added with `add @s` / `update @s` and removed with `delete @s` (`ip-input-dynset`), by an inet chain's two
    /// programs and read by a chain at another priority (`inet-input-dynset`), and the counters, quotas and limits
    /// those elements get (`ip-input-meter`, `ip-input-meter-limits`).
    /// </summary>
    [Theory]
    [InlineData("ip-input-element-counters")]
    [InlineData("ip-input-element-limits")]
    [InlineData("ip-input-dynset")]
    [InlineData("inet-input-dynset")]
    [InlineData("ip-input-meter")]
    [InlineData("ip-input-meter-limits")]
    [InlineData("ip-input-dynmap")]
    public void BpfOnlyKeepsSetStateLikeTheKernel(string name)
    {
        var c = PacketCase.Load(name);
        var side = sides.Side(SidesFixture.Role.DaemonBpfOnly, TopologyKind.Routed);
        var report = PacketRunner.RunAndCompare(c, sides.Kernel, side);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{side.DaemonLog}");
    }

    public static TheoryData<string> RefusedCases()
    {
        var data = new TheoryData<string>();
        foreach (var n in PacketCase.AllNames())
            if (PacketCase.Load(n).DaemonRefuses != null) data.Add(n);
        return data;
    }

    /// <summary>
    /// A case marked `daemon-refuses` holds something BPF cannot run: bpfilterd --placement bpf-only
    /// refuses it as the directive says, naming the rule, and keeps nothing of it.
    /// </summary>
    [Theory]
    [MemberData(nameof(RefusedCases))]
    public void BpfOnlyRefusesWhatBpfCannotRun(string name)
    {
        var c = PacketCase.Load(name);
        var side = sides.Side(SidesFixture.Role.DaemonBpfOnly, TopologyKind.Routed);
        var report = PacketRunner.CheckRefusal(c, side);
        Assert.True(report.Length == 0, report.Length == 0 ? "" : $"{report}\nbpfilterd log:\n{side.DaemonLog}");
    }
}
