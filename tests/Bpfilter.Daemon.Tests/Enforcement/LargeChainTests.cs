using System.Text;
using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Chains past the verifier's limits for one program: split into segments chained by tail calls
/// (ProgramCompiler.Segments.cs); one that still cannot be loaded runs in the kernel's nf_tables (auto)
/// or is refused whole with one line naming the chain (bpf-only), never with "Bad address".
/// </summary>
public sealed class LargeChainTests
{
    internal const int FirstPort = 20000;

    /// <summary>
    /// Rule i drops tcp dport FirstPort + i, with by turns nothing else, `tcp sport != 9`, `meta mark != 7` or
    /// `tcp sport 1024-65535` (the probe's source port is ephemeral): neighbours never group into one lookup,
    /// and every fourth rule matches a field classification does not take, so no run is long enough to
    /// become a classifier: the chain stays linear code, to be split.
    /// </summary>
    internal static string Alternating(int rules)
    {
        var sb = new StringBuilder("table ip t {\n  chain in {\n    type filter hook input priority 0; policy accept;\n");
        for (var i = 0; i < rules; i++)
        {
            var extra = (i % 4) switch { 0 => "", 1 => " tcp sport != 9", 2 => " meta mark != 7", _ => " tcp sport 1024-65535" };
            sb.Append($"    tcp dport {FirstPort + i}{extra} counter drop\n");
        }
        return sb.Append("  }\n}\n").ToString();
    }

    [Fact]
    public void AChainOfThousandsOfAlternatingRulesIsSplitAndKeepsItsVerdictsAndCounters()
    {
        const int n = 6000;
        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(Alternating(n));
        Assert.Contains("segment 1, slot(s) 1", rig.Explain());
        Assert.False(rig.Delivered(FirstPort));
        Assert.False(rig.Delivered(FirstPort + n / 2 + 1));
        Assert.False(rig.Delivered(FirstPort + n - 1));
        Assert.True(rig.Delivered(FirstPort + n));
        var listing = rig.ListRuleset();
        Assert.Matches($@"tcp dport {FirstPort} counter packets [1-9]", listing);
        Assert.Matches($@"tcp dport {FirstPort + n - 1} tcp sport 1024-65535 counter packets [1-9]", listing);
        Assert.Matches($@"tcp dport {FirstPort + 1} tcp sport != 9 counter packets 0 ", listing);
    }

    /// <summary>
    /// One rule jumping to a regular chain of <paramref name="rules"/> counted drops (not classifiable: every other one
    /// matches meta mark, never 7 here): past one verifier walk's branches, so the chain is split into chunks
    /// (ProgramCompiler.Chunks.cs).
    /// </summary>
    static string JumpToLongChain(int rules)
    {
        var sb = new StringBuilder("table ip t {\n  chain big {\n");
        for (var i = 0; i < rules; i++)
            sb.Append($"    tcp dport {FirstPort + i}{(i % 2 == 0 ? "" : " meta mark != 7")} counter drop\n");
        return sb.Append("  }\n  chain in {\n    type filter hook input priority 0; policy accept;\n    ip protocol tcp jump big\n  }\n}\n").ToString();
    }

    /// <summary>Ports probed in the long chain: its first rule, a middle one, its last, and one no rule drops.</summary>
    static readonly int[] LongChainProbes = [FirstPort, FirstPort + 1501, FirstPort + 2999, FirstPort + 3000];

    [Fact]
    public void AThreeThousandRuleRegularChainRunsInBpfUnderBpfOnlyAsInTheKernel()
    {
        var script = JumpToLongChain(3000);
        bool[] bpf, kernel;
        using (var rig = new EnforcementRig("--placement", "bpf-only"))
        {
            rig.Nft(script);
            Assert.Equal("", rig.KernelRuleset().Trim());
            Assert.Single(rig.ProgramIds());
            bpf = [.. LongChainProbes.Select(rig.Delivered)];
            var listing = rig.ListRuleset();
            Assert.Matches($@"tcp dport {FirstPort} counter packets [1-9]", listing);
            Assert.Matches($@"tcp dport {FirstPort + 2999} meta mark != 0x00000007 counter packets [1-9]", listing);
            Assert.Matches($@"tcp dport {FirstPort + 1} meta mark != 0x00000007 counter packets 0 ", listing);
        }
        // the oracle: the same ruleset in the kernel's nf_tables, the same probes
        using (var rig = new EnforcementRig())
        {
            var r = rig.Daemon.Ns.Exec("nft", ["-f", "-"], script);
            Assert.True(r.Exit == 0, r.Stderr);
            kernel = [.. LongChainProbes.Select(rig.Delivered)];
        }
        Assert.Equal(kernel, bpf);
        Assert.Equal([false, false, false, true], bpf);
    }

    /// <summary>
    /// A regular chain of 20,000 rules: split into chunks each walk is within the verifier's limits, but all functions of
    /// one program share its 1M processed instructions (about 70 per rule here), and the chain is called from one program.
    /// </summary>
    static string Unloadable() => JumpToLongChain(20000);

    [Fact]
    public void UnderBpfOnlyAChainTheVerifierRefusesIsRefusedWholeInOneLine()
    {
        using var rig = new EnforcementRig("--placement", "bpf-only");
        var r = rig.Nft(Unloadable(), expectSuccess: false);
        Assert.Contains("Operation not supported", r.Stderr);
        Assert.DoesNotContain("Bad address", r.Stderr);
        Assert.Matches(@"transaction refused \(errno 95\): table ip t chain in: cannot be loaded into BPF: the verifier rejected the program at [^\n]*: [^\n]+\n",
            rig.Daemon.Log);
        Assert.Contains("verifier rejected the program for", rig.Daemon.Log); // the verifier's log
        Assert.Contains("BPF program is too large", rig.Daemon.Log); // its reason: the 1M processed instructions, not the branches
        Assert.Equal("", rig.ListRuleset().Trim());
        Assert.Empty(rig.ProgramIds());
    }

    [Fact]
    public void UnderAutoPlacementAChainTheVerifierRefusesRunsInTheKernel()
    {
        using var rig = new EnforcementRig();
        rig.Nft(Unloadable());
        Assert.Contains("placing table ip t chain in in the kernel's nf_tables instead", rig.Daemon.Log);
        Assert.Contains("table ip t", rig.KernelRuleset());
        Assert.False(rig.Delivered(FirstPort + 1));
        Assert.True(rig.Delivered(FirstPort + 20000));
    }
}
