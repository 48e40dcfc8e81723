using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Mixed placement with real packets: base chains that lift run in BPF, the others in the kernel's
/// own nf_tables of the daemon's namespace at the same hook and priority; ties on a hook move BPF
/// chains to the kernel; a failure on either side of a transaction leaves both sides as they were.
/// </summary>
public sealed class PlacementTests
{
    // inet t/in matches a conntrack helper (kernel); ip b/in lifts (BPF) at another priority.
    const string Mixed = """
        table inet t {
            chain in {
                type filter hook input priority 0; policy accept;
                ct helper "ftp" drop
                tcp dport 81 counter drop
            }
        }
        table ip b {
            chain in {
                type filter hook input priority 10; policy accept;
                tcp dport 83 counter drop
            }
        }
        """;

    static readonly Regex Count81 = new(@"tcp dport 81 counter packets (\d+)");
    static readonly Regex Count83 = new(@"tcp dport 83 counter packets (\d+)");

    [Fact]
    public void ChainsBpfCannotRunRunInTheKernelAndCountThere()
    {
        using var rig = new EnforcementRig();
        rig.Nft(Mixed);
        Assert.False(rig.Delivered(81)); // kernel chain
        Assert.False(rig.Delivered(83)); // BPF chain
        Assert.True(rig.Delivered(82));

        var kernel = rig.KernelRuleset();
        Assert.Contains("table inet t", kernel);
        Assert.Contains("ct helper \"ftp\" drop", kernel);
        Assert.DoesNotContain("table ip b", kernel); // the BPF chain is not duplicated in the kernel

        var explain = rig.Explain();
        Assert.Contains("table ip b chain in: BPF", explain);
        Assert.Matches(@"table inet t chain in: kernel nf_tables \(.*rule \d+: expression 'ct helper'", explain);
        Assert.Contains("placement: table inet t chain in: kernel nf_tables", rig.Daemon.Log);

        var listing = rig.ListRuleset();
        Assert.True(int.Parse(Count81.Match(listing).Groups[1].Value) >= 1, listing); // read from the kernel
        Assert.True(int.Parse(Count83.Match(listing).Groups[1].Value) >= 1, listing); // read from BPF
        Assert.Contains("ct helper \"ftp\" drop", listing);

        // deleting the table takes it out of the kernel too
        rig.Nft("delete table inet t");
        Assert.DoesNotContain("table inet t", rig.KernelRuleset());
        Assert.True(rig.Delivered(81));
    }

    [Fact]
    public void ABpfChainAtTheSamePriorityOnTheSameHookAsAKernelChainRunsInTheKernelToo()
    {
        using var rig = new EnforcementRig();
        // ip b/in would lift, but a BPF_NETFILTER link cannot share priority 0 at ipv4 input with inet t/in
        rig.Nft(Mixed.Replace("priority 10", "priority 0"));
        var explain = rig.Explain();
        Assert.Matches(@"table ip b chain in: kernel nf_tables \(it has priority 0 on the same hook as kernel-placed table inet t chain in", explain);
        var kernel = rig.KernelRuleset();
        Assert.Contains("table ip b", kernel);
        Assert.Empty(rig.ProgramIds());
        Assert.False(rig.Delivered(81));
        Assert.False(rig.Delivered(83));
        Assert.True(rig.Delivered(82));
    }

    [Fact]
    public void NetdevChainOnADeviceThatDoesNotExistRunsInTheKernel()
    {
        using var rig = new EnforcementRig();
        rig.Nft("""
            table netdev e {
                chain i {
                    type filter hook ingress device "bfnone0" priority 0; policy drop;
                }
            }
            """);
        Assert.Matches(@"table netdev e chain i: kernel nf_tables \(BPF could not load or attach it", rig.Explain());
        Assert.Contains("device \"bfnone0\"", rig.KernelRuleset());
        Assert.True(rig.Delivered(82));
    }

    [Fact]
    public void BpfOnlyRefusesTheChainNamingRuleAndExpression()
    {
        using var rig = new EnforcementRig("--placement", "bpf-only");
        var r = rig.Nft(Mixed, expectSuccess: false);
        Assert.Contains("Operation not supported", r.Stderr);
        Assert.Contains("table inet t chain in rule", rig.Daemon.Log);
        Assert.Contains("expression 'ct helper'", rig.Daemon.Log);
        Assert.Equal("", rig.KernelRuleset().Trim());
        Assert.Equal("", rig.ListRuleset().Trim());
    }

    const string Change = """
        add rule inet t in tcp dport 84 drop
        add rule ip b in tcp dport 85 drop
        """;

    [Theory]
    [InlineData("kernel-commit")] // the kernel fails after the BPF side staged its programs
    [InlineData("bpf-prepare")] // the BPF side fails after the kernel validated its batch
    public void AFailureOnEitherSideLeavesBothSidesAsTheyWere(string stage)
    {
        var trigger = Path.Combine(Path.GetTempPath(), $"bft-fault-{Guid.NewGuid():N}");
        try
        {
            using var rig = new EnforcementRig("--test-fault", $"{stage}={trigger}");
            rig.Nft(Mixed);
            var programs = rig.ProgramIds();
            var kernel = rig.KernelRuleset();
            var listing = rig.ListRuleset();
            Assert.NotEmpty(programs);

            File.WriteAllText(trigger, "");
            var r = rig.Nft(Change, expectSuccess: false);
            Assert.NotEqual(0, r.Exit);
            Assert.Contains($"injected fault at {stage}", rig.Daemon.Log);
            Assert.Equal(programs, rig.ProgramIds());
            Assert.Equal(kernel, rig.KernelRuleset());
            Assert.DoesNotContain("dport 84", rig.ListRuleset());
            Assert.True(rig.Delivered(84));
            Assert.True(rig.Delivered(85));
            Assert.False(rig.Delivered(81));
            Assert.False(rig.Delivered(83));

            File.Delete(trigger);
            rig.Nft(Change);
            Assert.False(rig.Delivered(84));
            Assert.False(rig.Delivered(85));
            Assert.Contains("tcp dport 84 drop", rig.KernelRuleset());
            Assert.NotEqual(programs, rig.ProgramIds());
        }
        finally
        {
            File.Delete(trigger);
        }
    }

    static readonly Regex NamedC = new(@"counter c \{\s*packets (\d+)");

    static long NamedCount(string listing)
    {
        var m = NamedC.Match(listing);
        Assert.True(m.Success, listing);
        return long.Parse(m.Groups[1].Value);
    }

    /// <summary>
    /// A named counter BPF takes over is kept in the kernel commit for its read, then deleted by a second kernel
    /// transaction; when that one fails, the counter stays in the kernel where no rule names it, is listed from BPF
    /// alone (never counted twice, never backwards) and the next transaction deletes it.
    /// </summary>
    [Fact]
    public void ANamedCounterAFailedSecondKernelTransactionLeavesIsDeletedByTheNextAndNeverCountedTwice()
    {
        var trigger = Path.Combine(Path.GetTempPath(), $"bft-fault-{Guid.NewGuid():N}");
        try
        {
            using var rig = new EnforcementRig("--test-fault", $"lingering-delete={trigger}");
            rig.Nft("""
                table inet t {
                    counter c {
                    }
                    chain in {
                        type filter hook input priority 0; policy accept;
                        ct helper "ftp" drop
                        tcp dport 81 counter name "c" drop
                    }
                }
                """);
            Assert.False(rig.Delivered(81));
            var before = NamedCount(rig.ListRuleset());
            Assert.True(before >= 1);

            File.WriteAllText(trigger, "");
            var m = Regex.Match(rig.Daemon.Bfnft(["-a", "list", "chain", "inet", "t", "in"]).Stdout, @"ct helper ""ftp"" drop # handle (\d+)");
            Assert.True(m.Success);
            rig.Nft($"delete rule inet t in handle {m.Groups[1].Value}");
            Assert.Contains("table inet t chain in: BPF", rig.Explain());
            Assert.Contains("named object(s) the kernel commit kept failed", rig.Daemon.Log);
            Assert.Contains("counter c", rig.KernelRuleset());
            Assert.Equal(before, NamedCount(rig.ListRuleset()));
            Assert.False(rig.Delivered(81));
            var after = NamedCount(rig.ListRuleset());
            Assert.True(after > before, $"{before} then {after}");

            File.Delete(trigger);
            rig.Nft("add table ip other");
            Assert.DoesNotContain("table inet t", rig.KernelRuleset());
            Assert.Equal(after, NamedCount(rig.ListRuleset()));
        }
        finally
        {
            File.Delete(trigger);
        }
    }

    /// <summary>Table inet t: chain k stays in the kernel, chain m moves to BPF once its ct helper rule goes, naming counter c.</summary>
    const string KeptAndMoved = """
        table inet t {
            counter c {
            }
            chain k {
                type filter hook input priority 0; policy accept;
                ct helper "ftp" drop
                tcp dport 84 counter drop
            }
            chain m {
                type filter hook input priority 10; policy accept;
                ct helper "ftp" drop
                tcp dport 81 counter name "c" drop
            }
        }
        """;

    static readonly Regex Count84 = new(@"tcp dport 84 counter packets (\d+)");

    static (long C, long K) Counts(string listing) => (NamedCount(listing), long.Parse(Count84.Match(listing).Groups[1].Value));

    /// <summary>
    /// Places <see cref="KeptAndMoved"/>, moves chain m to BPF with the fault file saying <paramref name="fault"/> at the
    /// second kernel transaction (<paramref name="moved"/> checks the outcome), kills and restarts the daemon
    /// (<paramref name="restarted"/> checks the kernel): c and k list what they did before the move, and count on.
    /// </summary>
    static void MoveMAndRestart(string fault, Action<EnforcementRig, ProcessResult> moved, Action<EnforcementRig> restarted)
    {
        var trigger = Path.Combine(Path.GetTempPath(), $"bft-fault-{Guid.NewGuid():N}");
        try
        {
            using var pins = new PersistenceTests.PinFs();
            using var rig = new EnforcementRig("--pin-dir", pins.Path, "--test-fault", $"lingering-delete={trigger}");
            rig.Nft(KeptAndMoved);
            Assert.False(rig.Delivered(81));
            Assert.False(rig.Delivered(84));
            var counts = Counts(rig.ListRuleset());
            Assert.True(counts is { C: >= 1, K: >= 1 }, $"{counts}");

            File.WriteAllText(trigger, fault);
            var m = Regex.Match(rig.Daemon.Bfnft(["-a", "list", "chain", "inet", "t", "m"]).Stdout, @"ct helper ""ftp"" drop # handle (\d+)");
            Assert.True(m.Success);
            moved(rig, rig.Nft($"delete rule inet t m handle {m.Groups[1].Value}", expectSuccess: false));
            File.Delete(trigger);
            rig.Daemon.Kill();
            rig.Daemon.Restart();
            restarted(rig);
            Assert.Equal(counts, Counts(rig.ListRuleset()));
            Assert.False(rig.Delivered(81));
            Assert.False(rig.Delivered(84));
            var after = Counts(rig.ListRuleset());
            Assert.True(after.C > counts.C && after.K > counts.K, $"{counts} then {after}");
        }
        finally
        {
            File.Delete(trigger);
        }
    }

    /// <summary>
    /// Chain m moves to BPF and its named counter c stays in the kernel commit for the read; the second kernel transaction
    /// fails and the daemon is killed. The restarted daemon adopts table inet t, whose chain k stayed in the kernel, as
    /// the part of its state the kernel holds (the state's, plus c unnamed) instead of recreating it: k's counter goes on
    /// from the kernel's own count, c is deleted from the kernel in place and listed from BPF alone, never twice.
    /// </summary>
    [Fact]
    public void ADaemonKilledAfterAFailedSecondKernelTransactionKeepsTheKernelChainsCountersAndDeletesTheKeptCounter() =>
        MoveMAndRestart("", (rig, r) =>
        {
            Assert.Equal(0, r.Exit);
            Assert.Contains("table inet t chain m: BPF", rig.Explain());
            Assert.Contains("table inet t chain k: kernel nf_tables", rig.Explain());
            Assert.Contains("named object(s) the kernel commit kept failed", rig.Daemon.Log);
            Assert.Contains("counter c", rig.KernelRuleset());
        }, rig =>
        {
            Assert.DoesNotContain("counter c", rig.KernelRuleset());
            Assert.Contains("tcp dport 84 counter", rig.KernelRuleset());
        });

    /// <summary>
    /// As above, but the daemon dies between the two kernel transactions (killed at the second): the restart's state is
    /// the one before the transaction, with chain m in the kernel. Its adoption takes table inet t as the part of that
    /// state the kernel holds (k, and c kept for the read) and puts m back in place: k and c go on from the kernel's own
    /// counts, nothing counted twice, nothing reset.
    /// </summary>
    [Fact]
    public void ADaemonKilledBetweenTheTwoKernelTransactionsKeepsTheKernelCountsOfTheTableAndPutsTheChainBack() =>
        MoveMAndRestart("kill", (_, r) => Assert.NotEqual(0, r.Exit), rig =>
        {
            Assert.Contains("table inet t chain m: kernel nf_tables", rig.Explain());
            var kernel = rig.KernelRuleset();
            Assert.Single(Regex.Matches(kernel, @"counter c \{"));
            Assert.Contains("ct helper \"ftp\" drop", kernel);
        });

    [Fact]
    public void AnElementAddedToASetBothSidesReadReachesBoth()
    {
        using var rig = new EnforcementRig();
        rig.Nft("""
            table inet t {
                set blk {
                    type ipv4_addr
                }
                chain k {
                    type filter hook input priority 0; policy accept;
                    ct helper "ftp" drop
                    ip saddr @blk tcp dport 81 counter drop
                }
                chain b {
                    type filter hook input priority 10; policy accept;
                    ip saddr @blk tcp dport 83 counter drop
                }
            }
            """);
        var explain = rig.Explain();
        Assert.Contains("table inet t chain b: BPF", explain);
        Assert.Contains("table inet t chain k: kernel nf_tables", explain);
        Assert.True(rig.Delivered(81));
        Assert.True(rig.Delivered(83));
        rig.Nft($"add element inet t blk {{ {EnforcementRig.PeerAddr} }}");
        Assert.False(rig.Delivered(81)); // the kernel's copy of the set has it
        Assert.False(rig.Delivered(83)); // and the BPF map too, from the same transaction
        Assert.Contains(EnforcementRig.PeerAddr, rig.KernelRuleset());
        rig.Nft($"delete element inet t blk {{ {EnforcementRig.PeerAddr} }}");
        Assert.True(rig.Delivered(81));
        Assert.True(rig.Delivered(83));
    }

    /// <summary>A table whose chain w adds the source of packets to TCP port 84 to @seen, and whose chain r at another priority drops a source in @seen at port 85.</summary>
    static string Seen(string table, int writePriority, int readPriority) => $$"""
        table {{table}} {
            set seen {
                type ipv4_addr
                flags dynamic
            }
            chain w {
                type filter hook input priority {{writePriority}}; policy accept;
                tcp dport 84 add @seen { ip saddr }
            }
            chain r {
                type filter hook input priority {{readPriority}}; policy accept;
                ip saddr @seen tcp dport 85 counter drop
            }
        }
        """;

    const string MaskedKey = """
        table ip m {
            set nets {
                type ipv4_addr
                flags dynamic
            }
            chain w {
                type filter hook input priority 0; policy accept;
                tcp dport 86 add @nets { ip saddr and 255.255.255.0 }
            }
            chain r {
                type filter hook input priority 40; policy accept;
                ip saddr & 255.255.255.0 @nets tcp dport 87 counter drop
            }
        }
        """;

    const string HostOrderMapData = """
        table ip m {
            map marks {
                type ipv4_addr : mark
                flags dynamic
            }
            chain w {
                type filter hook input priority 0; policy accept;
                tcp dport 86 add @marks { ip saddr : meta mark }
            }
        }
        table ip n {
            map last {
                type ipv4_addr : ipv4_addr
                flags dynamic
            }
            chain w {
                type filter hook input priority 20; policy accept;
                tcp dport 84 add @last { ip saddr : ip daddr }
            }
            chain r {
                type filter hook input priority 30; policy accept;
                ip saddr @last tcp dport 85 counter drop
            }
        }
        """;

    /// <param name="Rules">a ruleset with chains that write a set or map from the packet path and chains that read it</param>
    /// <param name="Explain">what the placement explanation says of each chain</param>
    /// <param name="WriteRead">per writer and reader pair, in order: the port whose packets the writer adds the peer at, the port the reader drops a member at</param>
    /// <param name="Listed">what the listing shows once the packet path added the peer</param>
    sealed record PacketWrittenCase(string Rules, string[] Explain, (int Write, int Read)[] WriteRead, string? Listed = null);

    static readonly Dictionary<string, PacketWrittenCase> PacketWritten = new()
    {
        // an inet chain runs in two programs (ipv4 and ipv6), and r at another priority in two more: all four share
        // the set's map, which the listing reads
        ["inet set"] = new(Seen("inet t", 0, 10), ["table inet t chain w: BPF", "table inet t chain r: BPF"], [(84, 85)], EnforcementRig.PeerAddr),
        // a masked key cannot be read back: m's writer and its reader stay in the kernel (which adds the peer's /24);
        // n's writer at one priority and reader at another are two programs, one map
        ["masked key"] = new(MaskedKey + "\n" + Seen("ip n", 20, 30),
        [
            "table ip m chain w: kernel nf_tables (it updates set nets from the packet path with a masked or shifted key",
            "table ip m chain r: kernel nf_tables (it reads set nets, which kernel-placed table ip m chain w updates from the packet path)",
            "table ip n chain w: BPF",
            "table ip n chain r: BPF",
        ], [(84, 85), (86, 87)]),
        // a map whose data BPF writes as the kernel's register bytes (a packet field) runs in BPF and a membership test
        // reads it there; host-order data (`meta mark`) stays in the kernel with its reason
        ["host-order map data"] = new(HostOrderMapData,
        [
            "table ip m chain w: kernel nf_tables (",
            "dynset on map 'marks' with data other than a constant or a whole packet field",
            "table ip n chain w: BPF",
            "table ip n chain r: BPF",
        ], [(84, 85)], $"{EnforcementRig.PeerAddr} : "),
    };

    /// <summary>
    /// Sets and maps written from the packet path: each chain runs where the placement explanation says, and with
    /// real packets a writer adds the peer (a reader let it through before) and the reader drops it after.
    /// </summary>
    [Theory]
    [InlineData("inet set")]
    [InlineData("masked key")]
    [InlineData("host-order map data")]
    public void ASetOrMapWrittenFromThePacketPathRunsWhereItsPlacementSays(string name)
    {
        var c = PacketWritten[name];
        using var rig = new EnforcementRig();
        rig.Nft(c.Rules);
        var explain = rig.Explain();
        foreach (var line in c.Explain) Assert.Contains(line, explain);
        foreach (var (write, read) in c.WriteRead)
        {
            Assert.True(rig.Delivered(read));
            Assert.True(rig.Delivered(write)); // the writer adds the peer
            Assert.False(rig.Delivered(read)); // and the reader finds it there
        }
        if (c.Listed is { } listed) Assert.Contains(listed, rig.ListRuleset()); // listed from the map the packet path wrote
    }

    /// <summary>`--placement bpf-only` refuses a map the packet path writes with host-order data (`meta mark`), by rule.</summary>
    [Fact]
    public void BpfOnlyRefusesAMapWrittenFromThePacketPathWithHostOrderData()
    {
        using var only = new EnforcementRig("--placement", "bpf-only");
        var r = only.Nft(HostOrderMapData, expectSuccess: false);
        Assert.Contains("Operation not supported", r.Stderr);
        Assert.Contains("table ip m chain w rule", only.Daemon.Log);
        Assert.Contains("dynset on map 'marks' with data other than a constant or a whole packet field", only.Daemon.Log);
    }

    [Fact]
    public void WhileAChainSetsNftraceEveryBaseChainRunsInTheKernel()
    {
        using var rig = new EnforcementRig();
        const string Traced = """
            table ip b {
                chain in {
                    type filter hook input priority 10; policy accept;
                    tcp dport 83 counter drop
                }
            }
            table netdev d {
                chain eg {
                    type filter hook egress device "DEV" priority 0; policy accept;
                    udp dport 9 counter
                }
            }
            table inet t {
                chain pre {
                    type filter hook prerouting priority 0; policy accept;
                    tcp dport 81 meta nftrace set 1
                }
            }
            """;
        rig.Nft(Traced.Replace("DEV", rig.FwDev));
        var explain = rig.Explain();
        Assert.Matches(@"table inet t chain pre: kernel nf_tables \(.*expression 'meta' setting meta nftrace", explain);
        Assert.Contains("table ip b chain in: kernel nf_tables (kernel-placed table inet t chain pre sets meta nftrace", explain);
        Assert.Contains("table netdev d chain eg: kernel nf_tables (kernel-placed table inet t chain pre sets meta nftrace", explain);
        Assert.Empty(rig.ProgramIds());
        Assert.False(rig.Delivered(83));
        Assert.True(rig.Delivered(82));

        // without the tracing rule nothing is moved for it. (ip b/in stays in the kernel all the same: its
        // link would be attached while the kernel still holds the chain at that priority, EBUSY.)
        rig.Nft("delete table inet t");
        explain = rig.Explain();
        Assert.True(explain.Contains("table netdev d chain eg: BPF") && !explain.Contains("nftrace"), explain);
        Assert.False(rig.Delivered(83));
    }

    [Fact]
    public void BpfOnlyRefusesARuleSettingNftrace()
    {
        using var rig = new EnforcementRig("--placement", "bpf-only");
        var r = rig.Nft("""
            table inet t {
                chain pre {
                    type filter hook prerouting priority 0; policy accept;
                    tcp dport 81 meta nftrace set 1
                }
            }
            """, expectSuccess: false);
        Assert.Contains("Operation not supported", r.Stderr);
        Assert.Contains("table inet t chain pre rule", rig.Daemon.Log);
        Assert.Contains("expression 'meta' setting meta nftrace", rig.Daemon.Log);
    }
}
