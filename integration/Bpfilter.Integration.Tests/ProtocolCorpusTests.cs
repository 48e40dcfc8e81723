using Bpfilter.Integration.Tests.Harness;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Bpfilter.Integration.Tests;

/// <summary>
/// The differential protocol tests: every corpus case run against kernel nf_tables and against
/// bpfilterd (through bfnft), each in a fresh namespace; every step must print the same.
/// BFNT_CANDIDATE=kernel runs kernel against kernel instead, which checks the corpus is deterministic.
/// </summary>
public class ProtocolCorpusTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var n in ProtocolCase.AllNames()) data.Add(n);
        return data;
    }

    [Fact]
    public void CorpusIsLargeAndParses()
    {
        var names = ProtocolCase.AllNames().ToList();
        Assert.True(names.Count >= 45, $"only {names.Count} protocol cases");
        foreach (var n in names) Assert.NotEmpty(ProtocolCase.Load(n).Steps);
    }

    /// <summary>Kernel against kernel: the corpus is deterministic and its `!` marks are right.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelAgreesWithItself(string name)
    {
        var c = ProtocolCase.Load(name);
        using var a = new KernelTarget();
        using var b = new KernelTarget();
        var report = CaseRunner.Run(c, a, b, candidateIsDaemon: false);
        Assert.True(report.Ok, report.ToString());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DaemonAnswersLikeTheKernel(string name)
    {
        var c = ProtocolCase.Load(name);
        if (Environment.GetEnvironmentVariable("BFNT_CANDIDATE") == "kernel")
        {
            using var k1 = new KernelTarget();
            using var k2 = new KernelTarget();
            var self = CaseRunner.Run(c, k1, k2, candidateIsDaemon: false);
            Assert.True(self.Ok, self.ToString());
            return;
        }
        var missing = RepoPaths.MissingReason();
        Assert.True(missing.Length == 0, missing);
        using var kernel = new KernelTarget();
        using var daemon = new DaemonTarget(c.DaemonArguments);
        var report = CaseRunner.Run(c, kernel, daemon, candidateIsDaemon: true);
        var transcripts = Environment.GetEnvironmentVariable("BFNT_TRANSCRIPT");
        if (!string.IsNullOrEmpty(transcripts))
            File.WriteAllText(Path.Combine(transcripts, name + ".daemon.log"), daemon.Daemon.Log);
        Assert.True(report.Ok, report.ToString());
        var kernelTables = daemon.KernelTables();
        var daemonTables = daemon.DaemonTables();
        // the conntrack switch's reserved table (a BPF chain reads ct keys) is the daemon's own, never a user's
        var leaked = Lines(kernelTables.Stdout).Except(Lines(daemonTables.Stdout)).Where(t => t != "table inet bpfilterd-conntrack").ToList();
        Assert.True(kernelTables.Exit == 0 && leaked.Count == 0,
            $"the kernel of the daemon's namespace holds tables the daemon does not list, so some nft call bypassed the daemon: {kernelTables}\ndaemon: {daemonTables}");
    }

    static IEnumerable<string> Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
