using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Named counters with real packets: rules of BPF chains naming one counter object count into one shared
/// slot, listed and reset as the kernel does; a chain sharing the object with a kernel-placed chain runs
/// in the kernel too, so that one object's state is never split.
/// </summary>
public sealed class NamedObjectPlacementTests
{
    const string Counted = """
        table inet t {
            counter c1 { }
            counter c2 { packets 5 bytes 100 }
            chain in {
                type filter hook input priority 0; policy accept;
                tcp dport 82 counter name "c1"
                tcp dport 83 counter name "c1" counter name "c2"
            }
        }
        """;

    /// <summary>A chain the kernel must run (ct helper), naming counter <paramref name="counter"/> for SYNs to <paramref name="port"/>.</summary>
    static string KernelChainNaming(int port, string counter) => $$"""
        table inet t {
            chain k {
                type filter hook input priority 10; policy accept;
                ct helper "ftp" drop
                tcp dport {{port}} counter name "{{counter}}"
            }
        }
        """;

    // a SYN of the peer's connect: 20 bytes of IPv4 header, 40 of TCP with options
    const int Syn = 60;


    [Fact]
    public void NamedCountersCountInBpfAndListAndResetAsTheKernel()
    {
        using var rig = new EnforcementRig();
        rig.Nft(Counted);
        Assert.Contains("table inet t chain in: BPF", rig.Explain());
        Assert.True(rig.Delivered(82));
        Assert.True(rig.Delivered(83));

        // nft prints what the daemon answers: the same text as the kernel's for the same values
        Assert.Equal($"table inet t {{\n\tcounter c1 {{\n\t\tpackets 2 bytes {2 * Syn}\n\t}}\n}}\n",
            rig.Daemon.Bfnft(["list", "counter", "inet", "t", "c1"]).Stdout);
        Assert.Equal($"table inet t {{\n\tcounter c1 {{\n\t\tpackets 2 bytes {2 * Syn}\n\t}}\n\tcounter c2 {{\n\t\tpackets 6 bytes {100 + Syn}\n\t}}\n}}\n",
            rig.Daemon.Bfnft(["list", "counters"]).Stdout);
        Assert.Matches(@"counter c1 \{\s+packets 2 bytes 120\s+\}", rig.ListRuleset());

        // a recompile (another rule) keeps what the object counted
        rig.Nft("add rule inet t in tcp dport 84 counter name \"c1\"");
        Assert.True(rig.Delivered(84));
        Assert.Matches(@"counter c1 \{\s+packets 3 bytes 180\s+\}", rig.ListRuleset());

        // reset prints the values it took back, then the counter starts from zero (c2 from zero too: reset counters)
        var reset = rig.Daemon.Bfnft(["reset", "counter", "inet", "t", "c1"]).Stdout;
        Assert.Matches(@"counter c1 \{\s+packets 3 bytes 180\s+\}", reset);
        Assert.Matches(@"counter c1 \{\s+packets 0 bytes 0\s+\}", rig.ListRuleset());
        Assert.Matches(@"counter c2 \{\s+packets 6 bytes 160\s+\}", rig.Daemon.Bfnft(["reset", "counters"]).Stdout);
        Assert.Matches(@"counter c2 \{\s+packets 0 bytes 0\s+\}", rig.ListRuleset());
        Assert.True(rig.Delivered(83));
        Assert.Matches(@"counter c1 \{\s+packets 1 bytes 60\s+\}", rig.ListRuleset());
        Assert.Matches(@"counter c2 \{\s+packets 1 bytes 60\s+\}", rig.ListRuleset());
    }

    [Fact]
    public void AChainSharingANamedCounterWithAKernelPlacedChainRunsInTheKernel()
    {
        using var rig = new EnforcementRig();
        rig.Nft(Counted + "\n" + KernelChainNaming(84, "c1"));
        var explain = rig.Explain();
        Assert.Matches(@"table inet t chain k: kernel nf_tables \(.*ct helper", explain);
        Assert.Matches(@"table inet t chain in: kernel nf_tables \(it shares counter c1 with kernel-placed table inet t chain k", explain);
        Assert.True(rig.Delivered(82));
        Assert.True(rig.Delivered(84));
        // both chains counted into the kernel's one object, read from there
        Assert.Matches(@"counter c1 \{\s+packets 2 bytes 120\s+\}", rig.ListRuleset());
    }

    [Fact]
    public void ANamedQuotaPlacedInTheKernelListsWhatTheKernelConsumedAndResets()
    {
        using var rig = new EnforcementRig();
        rig.Nft("""
            table inet t {
                quota q { until 1000 bytes used 100 bytes }
                chain k {
                    type filter hook input priority 0; policy accept;
                    ct helper "ftp" drop
                    tcp dport 82 quota name "q" counter accept
                }
            }
            """);
        Assert.Matches(@"table inet t chain k: kernel nf_tables", rig.Explain());
        Assert.True(rig.Delivered(82));
        Assert.Matches($@"quota q \{{\s+1000 bytes used {100 + Syn} bytes", rig.KernelRuleset());
        var after = rig.ListRuleset();
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(after, $@"quota q \{{\s+1000 bytes used {100 + Syn} bytes"), after + "\nkernel:\n" + rig.KernelRuleset());

        // reset: listed from nothing, then what the kernel consumes after it
        rig.Daemon.Bfnft(["reset", "quotas"]);
        Assert.Matches(@"quota q \{\s+1000 bytes\s+\}", rig.ListRuleset());
        Assert.True(rig.Delivered(82));
        Assert.Matches($@"quota q \{{\s+1000 bytes used {Syn} bytes", rig.ListRuleset());
    }

    [Fact]
    public void AQuotaPlacedInTheKernelStartsAtItsUsedBytes()
    {
        using var rig = new EnforcementRig();
        rig.Nft("""
            table inet t {
                chain k {
                    type filter hook input priority 0; policy accept;
                    ct helper "ftp" drop
                    tcp dport 82 quota until 1000 bytes used 100 bytes counter accept
                }
            }
            """);
        Assert.Matches(@"table inet t chain k: kernel nf_tables", rig.Explain());
        Assert.Contains("quota 1000 bytes used 100 bytes", rig.KernelRuleset());
        Assert.Contains("quota 1000 bytes used 100 bytes", rig.ListRuleset());
        Assert.True(rig.Delivered(82));
        var after = rig.ListRuleset();
        Assert.True(after.Contains($"quota 1000 bytes used {100 + Syn} bytes"), after + "\nkernel:\n" + rig.KernelRuleset());
    }

    const string ObjectMaps = """
        table inet t {
            counter c1 { }
            counter c2 { }
            quota q1 { until 1000 bytes }
            map om {
                type inet_service : counter
                elements = { 82 : "c1", 83 : "c2" }
            }
            chain in {
                type filter hook input priority 0; policy accept;
                counter name tcp dport map @om
                quota name tcp dport map { 82 : "q1" }
            }
        }
        """;

    [Fact]
    public void ObjectMapsCountInBpfAndAnElementOnlyChangeIsAMapUpdate()
    {
        using var rig = new EnforcementRig();
        rig.Nft(ObjectMaps);
        Assert.Contains("table inet t chain in: BPF", rig.Explain());
        Assert.True(rig.Delivered(82));
        Assert.True(rig.Delivered(83));
        Assert.True(rig.Delivered(85)); // in neither map: both rules break, nothing counts
        Assert.Equal($"table inet t {{\n\tcounter c1 {{\n\t\tpackets 1 bytes {Syn}\n\t}}\n\tcounter c2 {{\n\t\tpackets 1 bytes {Syn}\n\t}}\n}}\n",
            rig.Daemon.Bfnft(["list", "counters"]).Stdout);
        Assert.Matches($@"quota q1 \{{\s+1000 bytes used {Syn} bytes\s+\}}", rig.ListRuleset());

        // an element naming another counter of the table: the same program, one map update
        var programs = rig.ProgramIds();
        rig.Nft("add element inet t om { 84 : \"c1\" }");
        Assert.Equal(programs, rig.ProgramIds());
        Assert.True(rig.Delivered(84));
        Assert.Matches($@"counter c1 \{{\s+packets 2 bytes {2 * Syn}\s+\}}", rig.ListRuleset());
    }

    [Fact]
    public void AChainWhoseObjectMapMayNameACounterOfAKernelPlacedChainRunsInTheKernel()
    {
        using var rig = new EnforcementRig();
        rig.Nft(ObjectMaps + "\n" + KernelChainNaming(83, "c2"));
        Assert.Matches(@"table inet t chain in: kernel nf_tables \(it shares counter c\d with kernel-placed table inet t chain k", rig.Explain());
        Assert.True(rig.Delivered(83));
        // the map's count and the plain reference's both in the kernel's one object
        Assert.Matches($@"counter c2 \{{\s+packets 2 bytes {2 * Syn}\s+\}}", rig.ListRuleset());
    }

    /// <summary>
    /// A set with per-element counters looked up by a chain BPF could run and by a kernel-placed chain: both run
    /// in the kernel (one element's count is never split), and the listing shows the kernel's element counters.
    /// </summary>
    [Fact]
    public void ASetWhoseElementCountersAKernelPlacedChainUsesRunsInTheKernel()
    {
        using var rig = new EnforcementRig();
        rig.Nft($$"""
            table inet t {
                set s {
                    type ipv4_addr
                    counter
                    elements = { {{EnforcementRig.PeerAddr}} }
                }
                chain in {
                    type filter hook input priority 0; policy accept;
                    ip saddr @s tcp dport 82 counter
                }
                chain k {
                    type filter hook input priority 10; policy accept;
                    ct helper "ftp" drop
                    ip saddr @s tcp dport 84 counter
                }
            }
            """);
        Assert.Matches(@"table inet t chain in: kernel nf_tables \(it shares the element statements \(counters, quotas, limits\) of set s with kernel-placed table inet t chain k", rig.Explain());
        Assert.True(rig.Delivered(82));
        Assert.True(rig.Delivered(84));
        // each SYN passes both chains: two lookups per packet, all in the kernel's element
        Assert.Contains($"{EnforcementRig.PeerAddr} counter packets 4 bytes {4 * Syn}", rig.ListRuleset());
    }
}
