namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// The re-creations of <see cref="TableRecreateQuotaLimitTrafficTests"/> with the chain placed in the kernel's nf_tables
/// (a `log group` rule BPF cannot run), and with the chain moving sides in the transaction that re-creates it, compared
/// with the kernel (6.18): what was deleted and added back in one transaction is another object there, whose counters,
/// quotas and limits start from what the batch gave them, whichever side bpfilterd runs it on.
/// </summary>
public sealed class KernelPlacedRecreateTrafficTests
{
    /// <summary>A rule BPF cannot run (nflog): the chain runs in the kernel. No packet goes to its port.</summary>
    const string Log = "udp dport 19 log group 1";

    static string InKernel(string table = "t") =>
        TableRecreateQuotaLimitTrafficTests.Ruleset(table).Replace("udp dport 18 counter name \"c\"", $"udp dport 18 counter name \"c\"\n        {Log}");

    static void Burst(PacketPathSetTrafficTests.Sides s, int packets) => TableRecreateQuotaLimitTrafficTests.Burst(s, packets);

    /// <summary>Both sides with <paramref name="ruleset"/> (auto placement) and three packets to every port: quotas used up, buckets empty.</summary>
    static PacketPathSetTrafficTests.Sides Drained(string ruleset, string placed)
    {
        var s = new PacketPathSetTrafficTests.Sides("auto");
        try
        {
            s.Apply(ruleset);
            Assert.Contains($"table ip t chain out: {placed}", s.Rig.Explain());
            Burst(s, 3);
            var listing = s.SameListing("ruleset");
            Assert.Contains("used 60 bytes", listing);
            Assert.Contains("packets 3", listing);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>After the re-creation nothing of before is listed, and one packet to each port counts from nothing (a full bucket).</summary>
    static void StartedAnew(PacketPathSetTrafficTests.Sides s, string placed)
    {
        Assert.Contains($"table ip t chain out: {placed}", s.Rig.Explain());
        var renewed = s.SameListing();
        Assert.DoesNotContain("used", renewed);
        Assert.DoesNotContain("packets 3", renewed);
        Burst(s, 1);
        var listing = s.SameListing();
        if (listing.Contains("udp dport 13")) Assert.Contains("udp dport 13 limit rate 1/hour burst 1 packets counter packets 1", listing);
        Assert.Contains("udp dport 15 limit name \"l\" counter packets 1", listing);
        Assert.Contains("used 29 bytes", listing);
    }

    [Theory]
    [InlineData("flush ruleset")]
    [InlineData("delete table ip t")]
    public void AKernelPlacedTableAddedBackInTheSameTransactionStartsAnew(string removal)
    {
        using var s = Drained(InKernel(), "kernel nf_tables");
        s.Apply(removal + "\n" + InKernel());
        StartedAnew(s, "kernel nf_tables");
    }

    /// <summary>
    /// The file without the rule BPF cannot run, its chain at priority 1: a BPF_NETFILTER link cannot take the hook and
    /// priority the kernel's chain it replaces holds until the kernel commit (the move falls back to the kernel).
    /// </summary>
    static readonly string InBpf = TableRecreateQuotaLimitTrafficTests.Ruleset().Replace("priority 0;", "priority 1;");

    /// <summary>
    /// Counters and quotas reset before the re-creation: the kernel's new rules and objects count from 0, the reset of
    /// the old ones is not taken from them (bpfilterd keeps the kernel's count at a reset as a baseline to list less).
    /// </summary>
    [Fact]
    public void AResetBeforeTheReCreationIsNotTakenFromTheNewCounters()
    {
        using var s = Drained(InKernel(), "kernel nf_tables");
        foreach (var what in new[] { "counters", "quotas" })
        {
            s.Succeeds("reset", what);
        }
        s.Apply("flush ruleset\n" + InKernel());
        Burst(s, 1);
        var listing = s.SameListing();
        Assert.Contains("udp dport 18 counter name \"c\"", listing);
        Assert.Matches(@"counter c \{\s+packets 1 bytes 29", listing);
        Assert.Contains("udp dport 12 quota 60 bytes used 29 bytes counter packets 1", listing);
    }

    /// <summary>The reapplied file adds the rule BPF cannot run (the chain goes to the kernel), or no longer has it (back to BPF).</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ATableAddedBackOnTheOtherSideStartsAnew(bool toKernel)
    {
        using var s = Drained(toKernel ? TableRecreateQuotaLimitTrafficTests.Ruleset() : InKernel(), toKernel ? "BPF" : "kernel nf_tables");
        s.Apply("flush ruleset\n" + (toKernel ? InKernel() : InBpf));
        StartedAnew(s, toKernel ? "kernel nf_tables" : "BPF");
    }

    /// <summary>Sets and named objects of a kernel-placed chain deleted and added back alone (their rules deleted first, in the same file).</summary>
    [Fact]
    public void ASetAndNamedObjectsOfAKernelPlacedChainAddedBackStartAnew()
    {
        using var s = Drained(InKernel(), "kernel nf_tables");
        s.Apply(TableRecreateQuotaLimitTrafficTests.SetsAndObjectsAddedBack + $"\nadd rule ip t out {Log}\n");
        StartedAnew(s, "kernel nf_tables");
    }

    /// <summary>Elements of sets a kernel-placed chain reads, deleted and added back unchanged in one file: their quota, limit and counter start anew.</summary>
    [Fact]
    public void ElementsOfAKernelPlacedChainDeletedAndAddedBackStartAnew()
    {
        using var s = Drained(InKernel() + "\n" + TableRecreateQuotaLimitTrafficTests.Counted.Replace("udp dport 16 ip daddr @c", $"udp dport 16 ip daddr @c\n        {Log}"), "kernel nf_tables");
        Assert.Contains("table ip t chain count: kernel nf_tables", s.Rig.Explain());
        Assert.Contains("127.0.0.2 counter packets 3", s.SameListing());
        TableRecreateQuotaLimitTrafficTests.ElementsAddedBackStartAnew(s);
    }

    /// <summary>
    /// The control: a kernel-placed table that bpfilterd itself recreates in the kernel (its placement recreates a table
    /// whose set definition changed, here a set's default timeout) is not re-created for nft: its drained quotas and
    /// counters carry over (the placement reads them from the kernel and sends them with the table).
    /// </summary>
    [Fact]
    public void AKernelPlacedTableRecreatedForASetTimeoutKeepsItsDrainedQuotas()
    {
        const string timed = "add set ip t x { type ipv4_addr; flags timeout; timeout 1m; }";
        using var s = Drained(InKernel(), "kernel nf_tables");
        s.Apply(timed);
        s.Apply(timed.Replace("1m", "2m"));
        var listing = s.SameListing();
        Assert.Contains("timeout 2m", listing);
        Assert.Contains("quota q {\n\t\tover 60 bytes used 60 bytes", listing);
        Assert.Contains("udp dport 18 counter name \"c\"", listing);
        Assert.Matches(@"counter c \{\s+packets 3 bytes 87", listing);
    }
}
