using System.Text;
using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// bpfilterd enforcing with real BPF programs in namespaces the tests create: a refused transaction
/// keeps the previous programs, element updates reload nothing, deleting a table detaches, and
/// counters come back in `nft list ruleset`. Packets are real TCP SYNs over a veth pair.
/// </summary>
public sealed class EnforcementTests
{
    const string InputDrop81 = """
        table ip t {
            chain in {
                type filter hook input priority 0; policy accept;
                tcp dport 81 counter drop
            }
        }
        """;

    [Fact]
    public void RefusedTransactionLeavesThePreviousRulesetEnforced()
    {
        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(InputDrop81);
        Assert.False(rig.Delivered(81));
        Assert.True(rig.Delivered(82));
        var before = rig.ProgramIds();
        Assert.Single(before);

        // The batch empties the chain and would drop port 82, then adds a rule the lifter refuses (ct helper): all or nothing.
        var r = rig.Nft("""
            flush chain ip t in
            add rule ip t in tcp dport 82 drop
            add rule ip t in ct helper "ftp" accept
            """, expectSuccess: false);
        Assert.NotEqual(0, r.Exit);
        // nft 1.0.6 shows strerror and underlines the refused statement (the extack offset names its
        // expression); the reason is in the daemon log.
        const string refused = "add rule ip t in ct helper \"ftp\" accept";
        Assert.Contains("Operation not supported", r.Stderr);
        var lines = r.Stderr.Split('\n');
        int at = Array.FindIndex(lines, l => l.Trim() == refused);
        Assert.True(at >= 0 && at + 1 < lines.Length, r.Stderr);
        int col = lines[at].IndexOf("ct helper", StringComparison.Ordinal);
        Assert.Equal(new string(' ', col) + new string('^', "ct helper".Length), lines[at + 1].TrimEnd()); // nft marks the ct expression
        Assert.Contains("expression 'ct", rig.Daemon.Log);

        Assert.Equal(before, rig.ProgramIds());
        Assert.False(rig.Delivered(81));
        Assert.True(rig.Delivered(82));
        var listing = rig.ListRuleset();
        Assert.Contains("tcp dport 81", listing);
        Assert.DoesNotContain("dport 82", listing);
    }

    [Fact]
    public void DeviceThatDoesNotExistRefusesTheBatchAndKeepsThePrograms()
    {
        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft(InputDrop81);
        var before = rig.ProgramIds();
        var r = rig.Nft("""
            add rule ip t in tcp dport 82 drop
            table netdev e {
                chain i {
                    type filter hook ingress device "bfnone0" priority 0; policy drop;
                }
            }
            """, expectSuccess: false);
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("No such device", r.Stderr);
        Assert.Contains("device bfnone0 does not exist", rig.Daemon.Log);
        Assert.Equal(before, rig.ProgramIds());
        Assert.True(rig.Delivered(82));
        Assert.DoesNotContain("netdev", rig.ListRuleset());
    }

    [Fact]
    public void AddingAnElementToA100kSetUpdatesTheMapWithoutReloading()
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
        Assert.True(rig.Delivered(83));
        var before = rig.ProgramIds();
        Assert.Single(before);

        rig.Nft($"add element ip t block {{ {EnforcementRig.PeerAddr} }}");
        Assert.False(rig.Delivered(83));
        Assert.Equal(before, rig.ProgramIds());
        Assert.Matches(@"ip saddr @block counter packets [1-9]\d* bytes [1-9]\d* drop", rig.ListRuleset());

        rig.Nft($"delete element ip t block {{ {EnforcementRig.PeerAddr} }}");
        Assert.True(rig.Delivered(83));
        Assert.Equal(before, rig.ProgramIds());
        Assert.Contains("prepared 1 attach point(s): 0 program(s) loaded, 1 kept with 1 map update(s)", rig.Daemon.Log);
    }

    [Fact]
    public void DeletingATableDetachesItsPrograms()
    {
        using var rig = new EnforcementRig();
        rig.Nft(InputDrop81 + $$"""

            table netdev edge {
                chain ingress {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
                    tcp dport 84 counter drop
                }
            }
            """);
        Assert.False(rig.Delivered(81));
        Assert.False(rig.Delivered(84));
        Assert.Equal(2, rig.ProgramIds().Count);

        rig.Nft("delete table netdev edge");
        Assert.True(rig.Delivered(84));
        Assert.False(rig.Delivered(81));
        var ids = rig.ProgramIds();
        Assert.Single(ids);
        Assert.StartsWith("netfilter", ids.Keys.Single());

        rig.Nft("delete table ip t");
        Assert.True(rig.Delivered(81));
        Assert.Empty(rig.ProgramIds());
        Assert.Contains("(none: no base chain is enforced)", rig.Explain());
    }

    [Fact]
    public void CountersReadBackAndSurviveReloads()
    {
        using var rig = new EnforcementRig();
        rig.Nft(InputDrop81);
        for (int i = 0; i < 2; i++) Assert.False(rig.Delivered(81));
        // A SYN is retransmitted while the probe waits, so at least one packet per probe; every one is 60 bytes (SYN with options).
        var first = Counter(rig.ListRuleset());
        Assert.True(first.Packets >= 2, $"packets {first.Packets}");
        Assert.Equal(0UL, first.Bytes % 60);

        // A new rule reloads the program: the rule's totals carry over.
        rig.Nft("add rule ip t in tcp dport 85 drop");
        var after = Counter(rig.ListRuleset());
        Assert.True(after.Packets >= first.Packets, $"{after.Packets} < {first.Packets}");

        Assert.False(rig.Delivered(81));
        Assert.True(Counter(rig.ListRuleset()).Packets > after.Packets);
    }

    [Fact]
    public void ANewRuleSwapsProgramsOnTheSameLinksAtXdpTcxAndNetfilter()
    {
        using var rig = new EnforcementRig();
        rig.Nft(InputDrop81 + $$"""

            table netdev edge {
                chain ingress {
                    type filter hook ingress device "{{rig.FwDev}}" priority 0; policy accept;
                    tcp dport 84 drop
                }
                chain egress {
                    type filter hook egress device "{{rig.FwDev}}" priority 0; policy accept;
                    tcp sport 86 drop
                }
            }
            """);
        Assert.False(rig.Delivered(84));
        Assert.False(rig.Delivered(86)); // the reset is dropped on its way out (tcx egress)
        Assert.True(rig.Delivered(87));
        var links = rig.LinkIds();
        var progs = rig.ProgramIds();
        Assert.Equal(3, links.Count);

        rig.Nft("""
            add rule ip t in tcp dport 88 drop
            add rule netdev edge ingress tcp dport 89 drop
            add rule netdev edge egress tcp sport 87 drop
            """);
        Assert.Equal(links, rig.LinkIds());
        var now = rig.ProgramIds();
        Assert.All(progs, p => Assert.NotEqual(p.Value, now[p.Key]));
        Assert.False(rig.Delivered(87));
        Assert.False(rig.Delivered(88));
        Assert.False(rig.Delivered(89));
        Assert.True(rig.Delivered(90));
    }

    [Fact]
    public void BaseChainsOnOneHookRunInPriorityOrderAcceptGoesOnDropEnds()
    {
        using var rig = new EnforcementRig();
        // nf_tables semantics: accept ends one base chain and the next one still runs; drop ends everything.
        rig.Nft($$"""
            table ip a {
                chain early {
                    type filter hook input priority -10; policy accept;
                    tcp dport 91 accept
                    tcp dport 92 drop
                }
            }
            table inet b {
                chain late {
                    type filter hook input priority 10; policy accept;
                    tcp dport { 91, 93 } drop
                    tcp dport 92 accept
                }
            }
            table netdev c {
                chain first {
                    type filter hook ingress device "{{rig.FwDev}}" priority -5; policy accept;
                    tcp dport 94 accept
                }
                chain second {
                    type filter hook ingress device "{{rig.FwDev}}" priority 5; policy accept;
                    tcp dport 94 drop
                    tcp dport 95 drop
                }
            }
            """);
        Assert.False(rig.Delivered(91)); // accepted at -10, dropped at 10
        Assert.False(rig.Delivered(92)); // dropped at -10, never reaches 10's accept
        Assert.False(rig.Delivered(93));
        Assert.False(rig.Delivered(94)); // both netdev chains in one XDP program: accept in the first, drop in the second
        Assert.False(rig.Delivered(95));
        Assert.True(rig.Delivered(96));
        var ids = rig.ProgramIds();
        Assert.Contains("netfilter ipv4 input priority -10", ids.Keys);
        Assert.Contains("netfilter ipv4 input priority 10", ids.Keys);
        Assert.Contains("netfilter ipv6 input priority 10", ids.Keys);
        Assert.Single(ids.Keys, k => k.StartsWith("xdp", StringComparison.Ordinal));
    }

    static (ulong Packets, ulong Bytes) Counter(string listing)
    {
        var m = Regex.Match(listing, @"tcp dport 81 counter packets (\d+) bytes (\d+) drop");
        Assert.True(m.Success, listing);
        return (ulong.Parse(m.Groups[1].Value), ulong.Parse(m.Groups[2].Value));
    }
}
