namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// The quota and limit state of a table deleted and added back in one transaction, and of a set or named object deleted
/// and added back alone, compared with the kernel (6.18): the kernel's new rules, objects and elements are other objects,
/// whose quotas start from what the file gives them (nothing used) and whose limits start with a full bucket. bpfilterd
/// keeps that state in maps all programs share, by the same names (a re-created table hands out the same rule handles).
/// Every packet is 29 bytes (IPv4 20, UDP 8, one byte): a 60-byte quota is over at the third; the limits refill one packet
/// an hour, nothing within the test.
/// </summary>
public sealed class TableRecreateQuotaLimitTrafficTests
{
    const string Objects = """
            counter c {
            }
            quota q { over 60 bytes }
            limit l { rate 1/hour burst 1 packets }
            set s {
                type ipv4_addr
                quota over 60 bytes
                elements = { 127.0.0.2 }
            }
            set m {
                type ipv4_addr
                limit rate 1/hour burst 1 packets
                elements = { 127.0.0.2 }
            }
        """;

    internal static string Ruleset(string table = "t") => $$"""
        table ip {{table}} {
        {{Objects}}
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 quota 60 bytes counter
                udp dport 13 limit rate 1/hour burst 1 packets counter
                udp dport 14 quota name "q" counter
                udp dport 15 limit name "l" counter
                udp dport 16 ip daddr @s counter
                udp dport 17 ip daddr @m counter
                udp dport 18 counter name "c"
            }
        }
        """;

    /// <summary>Sets and named objects deleted and added back alone, their rules deleted first and added back after.</summary>
    internal const string SetsAndObjectsAddedBack = """
        flush chain ip t out
        delete counter ip t c
        delete quota ip t q
        delete limit ip t l
        delete set ip t s
        delete set ip t m
        add counter ip t c
        add quota ip t q { over 60 bytes }
        add limit ip t l { rate 1/hour burst 1 packets }
        add set ip t s { type ipv4_addr; quota over 60 bytes; elements = { 127.0.0.2 }; }
        add set ip t m { type ipv4_addr; limit rate 1/hour burst 1 packets; elements = { 127.0.0.2 }; }
        add rule ip t out udp dport 14 quota name "q" counter
        add rule ip t out udp dport 15 limit name "l" counter
        add rule ip t out udp dport 16 ip daddr @s counter
        add rule ip t out udp dport 17 ip daddr @m counter
        add rule ip t out udp dport 18 counter name "c"
        """;

    /// <summary>A set with counted elements (each added back by <see cref="ElementsAddedBackStartAnew"/>) and its chain.</summary>
    internal const string Counted = """
        table ip t {
            set c {
                type ipv4_addr
                counter
                elements = { 127.0.0.2 }
            }
            chain count {
                type filter hook output priority 0; policy accept;
                udp dport 16 ip daddr @c
            }
        }
        """;

    /// <summary>Elements of s, m and c (<see cref="Counted"/>) deleted and added back unchanged in one file, then one packet each.</summary>
    internal static void ElementsAddedBackStartAnew(PacketPathSetTrafficTests.Sides s)
    {
        s.Apply("""
            delete element ip t s { 127.0.0.2 }
            delete element ip t m { 127.0.0.2 }
            delete element ip t c { 127.0.0.2 }
            add element ip t s { 127.0.0.2 }
            add element ip t m { 127.0.0.2 }
            add element ip t c { 127.0.0.2 }
            """);
        var renewed = s.SameListing();
        Assert.Contains("127.0.0.2 counter packets 0", renewed);
        Assert.Contains("used 60 bytes", renewed); // the named quota q is not renewed
        Assert.DoesNotContain("127.0.0.2 quota over 60 bytes used", renewed);
        Burst(s, 1);
        var listing = s.SameListing();
        Assert.Contains("udp dport 17 ip daddr @m counter packets 2", listing); // a full bucket again
        Assert.Contains("127.0.0.2 counter packets 1", listing);
    }

    static readonly int[] Ports = [12, 13, 14, 15, 16, 17, 18];

    internal static void Burst(PacketPathSetTrafficTests.Sides s, int packets)
    {
        foreach (var port in Ports) s.Send(port, Enumerable.Repeat("127.0.0.2", packets).ToArray());
    }

    /// <summary>Both sides with the ruleset and three packets to every port: quotas used up, buckets empty.</summary>
    static PacketPathSetTrafficTests.Sides Drained(string ruleset)
    {
        var s = new PacketPathSetTrafficTests.Sides();
        try
        {
            s.Apply(ruleset);
            Burst(s, 3);
            Assert.Contains("used 60 bytes", s.SameListing("ruleset"));
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    [Theory]
    [InlineData("flush ruleset")]
    [InlineData("delete table ip t")]
    public void QuotasAndLimitsOfATableAddedBackInTheSameTransactionStartAnew(string removal)
    {
        using var s = Drained(Ruleset());
        s.Apply(removal + "\n" + Ruleset());
        Assert.DoesNotContain("used", s.SameListing());
        Assert.DoesNotContain("used", s.SameListing("quotas"));
        Burst(s, 1);
        var listing = s.SameListing();
        Assert.Contains("udp dport 13 limit rate 1/hour burst 1 packets counter packets 1", listing); // a full bucket again
        Assert.Contains("udp dport 15 limit name \"l\" counter packets 1", listing);
        Assert.Contains("used 29 bytes", listing);
    }

    /// <summary>Sets and named objects deleted and added back alone (their rules deleted first, in the same file); a named counter too.</summary>
    [Fact]
    public void ASetAndNamedObjectsAddedBackInTheSameTransactionStartAnew()
    {
        using var s = Drained(Ruleset());
        s.Apply(SetsAndObjectsAddedBack);
        var renewed = s.SameListing();
        Assert.DoesNotContain("used", renewed);
        Assert.DoesNotContain("packets 3", renewed);
        Burst(s, 1);
        var listing = s.SameListing();
        Assert.Contains("udp dport 15 limit name \"l\" counter packets 1", listing);
        Assert.Contains("udp dport 17 ip daddr @m counter packets 1", listing);
        Assert.Contains("used 29 bytes", listing);
    }

    /// <summary>
    /// Elements deleted and added back unchanged in one file are other elements too (nft_set_elem_init): their quota, limit
    /// and counter start anew; an element merely added again (no deletion) is the same one and keeps them.
    /// </summary>
    [Fact]
    public void ElementsDeletedAndAddedBackInTheSameTransactionStartAnew()
    {
        using var s = Drained(Ruleset() + "\n" + Counted);
        s.Apply("add element ip t s { 127.0.0.2 }\nadd element ip t c { 127.0.0.2 }\n");
        Assert.Contains("127.0.0.2 counter packets 3", s.SameListing());
        ElementsAddedBackStartAnew(s);
    }

    /// <summary>The control: a table not re-created keeps its quotas and limits, beside one that is.</summary>
    [Fact]
    public void QuotasAndLimitsOfTablesNotRecreatedContinue()
    {
        using var s = Drained(Ruleset() + "\n" + Ruleset("u"));
        s.Apply("delete table ip t\n" + Ruleset() + "\ntable ip u {\n}\n");
        Assert.Contains("used 60 bytes", s.SameListing("table ip u"));
        Assert.DoesNotContain("used", s.SameListing("table ip t"));
        Burst(s, 1);
        var u = s.SameListing("table ip u");
        Assert.Contains("udp dport 15 limit name \"l\" counter packets 1 ", u); // still empty: the burst's one packet of before
        Assert.Contains("used 60 bytes", u);
        s.SameListing("ruleset");
    }
}
