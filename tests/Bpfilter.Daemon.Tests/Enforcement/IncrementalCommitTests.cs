using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Commits touch only what changed: an element added to a large set lifts nothing and loads no
/// program (only a map update, timed in the daemon log), and a rule added to one chain leaves the
/// programs of every other attach point in place. A chain that cannot be lifted is named in the log.
/// </summary>
public sealed partial class IncrementalCommitTests(ITestOutputHelper output)
{
    [Fact]
    public void AnElementAddedToA100kSetLiftsNothingAndTakesMilliseconds()
    {
        using var rig = new EnforcementRig();
        var sb = new StringBuilder("table ip t {\n  set block {\n    type ipv4_addr\n    elements = { ");
        for (int i = 0; i < 100_000; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append($"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}");
        }
        sb.Append(" }\n  }\n  chain in {\n    type filter hook input priority 0; policy accept;\n    ip saddr @block counter drop\n  }\n}\n");
        rig.Nft(sb.ToString());
        var before = rig.ProgramIds();
        Assert.True(rig.Delivered(83));

        // The first element-only commit of a daemon process also pays for JIT-compiling that path; the
        // ones after it show the steady cost. Each lifts nothing and loads nothing.
        var times = new List<double>();
        foreach (var addr in new[] { "198.18.9.1", "198.18.9.2", EnforcementRig.PeerAddr })
        {
            var mark = rig.Daemon.Log.Length;
            rig.Nft($"add element ip t block {{ {addr} }}");
            var log = rig.Daemon.Log[mark..];
            Assert.Contains("(elements only: lifted nothing, no program loaded)", log);
            Assert.DoesNotContain("; lift ", log); // the whole-ruleset path was not taken
            var m = Committed().Match(log);
            Assert.True(m.Success, log);
            Assert.Equal("1", m.Groups[2].Value);
            times.Add(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        output.WriteLine($"element-only commits into a 100,000-element set, backend time: {string.Join(", ", times.Select(t => $"{t:F3} ms"))} (first includes JIT)");
        Assert.True(times[^1] < 50, $"{times[^1]} ms"); // 5 ms is the goal; the bound leaves room for a loaded 2-core machine

        Assert.Equal(before, rig.ProgramIds());
        Assert.False(rig.Delivered(83));
    }

    [Fact]
    public void ARuleAddedToOneChainLeavesEveryOtherAttachPointsProgram()
    {
        using var rig = new EnforcementRig();
        rig.Nft($$"""
            table inet f {
                chain in {
                    type filter hook input priority 0; policy accept;
                    tcp dport 81 drop
                }
                chain out {
                    type filter hook output priority 0; policy accept;
                    tcp sport 9 drop
                }
            }
            table netdev edge {
                chain ingress {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
                    tcp dport 84 drop
                }
            }
            """);
        var before = rig.ProgramIds();
        Assert.Equal(5, before.Count); // input and output for ipv4 and ipv6, xdp

        rig.Nft("add rule inet f in tcp dport 82 drop");
        var after = rig.ProgramIds();
        var changed = before.Keys.Where(k => before[k] != after[k]).Order().ToList();
        Assert.Equal(["netfilter ipv4 input priority 0", "netfilter ipv6 input priority 0"], changed);
        Assert.Contains("2 program(s) loaded", rig.Daemon.Log);
        Assert.Contains("3 not recompiled", rig.Daemon.Log);
        Assert.False(rig.Delivered(82));
        Assert.False(rig.Delivered(84));
        Assert.True(rig.Delivered(85));
    }

    [Fact]
    public void AChainThatCannotBeLiftedIsNamedWithItsRuleAndExpression()
    {
        // bpf-only refuses it; by default the same per-chain result places the chain in the kernel (PlacementTests)
        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(EnforcementTestsRuleset);
        var r = rig.Nft("add rule ip t in ct helper \"ftp\" accept", expectSuccess: false);
        Assert.NotEqual(0, r.Exit);
        var handle = Regex.Match(rig.Daemon.Log, @"table ip t chain in cannot be lifted: table ip t chain in rule (\d+): expression 'ct helper'");
        Assert.True(handle.Success, rig.Daemon.Log);
        Assert.False(rig.Delivered(81));
    }

    const string EnforcementTestsRuleset = """
        table ip t {
            chain in {
                type filter hook input priority 0; policy accept;
                tcp dport 81 counter drop
            }
        }
        """;

    [GeneratedRegex(@"committed elements only in (\d+\.\d+) ms: lifted nothing, no program loaded, (\d+) map update\(s\)")]
    private static partial Regex Committed();
}
