namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A set deleted and created anew by the same name in one transaction, compared with the kernel (6.18): `flush ruleset`
/// or `delete table` with the table added back, or `delete set` and `add set` once no rule references it. The kernel's
/// new set is another object holding only the transaction's elements: what packets added to the old one (`add @s`,
/// `update @s` with a timeout), and the old elements' counters, are gone; a set merely kept across a transaction keeps
/// them (SetSizeChangeTrafficTests, PacketPathSetTrafficTests).
/// </summary>
public sealed class SetRecreateTrafficTests
{
    const string Chain = """
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 add @seen { ip daddr }
                udp dport 12 update @timed { ip daddr }
                udp dport 12 ip daddr @hits
            }
        """;

    static string Sets(int size) => $$"""
            set seen {
                type ipv4_addr
                size {{size}}
                flags dynamic
                elements = { 10.0.0.1 }
            }
            set timed {
                type ipv4_addr
                flags dynamic,timeout
                timeout 5m
            }
            set hits {
                type ipv4_addr
                counter
                elements = { 127.0.0.2 }
            }
        """;

    static string Ruleset(int size) => "table ip t {\n" + Sets(size) + "\n" + Chain + "\n}\n";

    /// <summary>Both sides with the ruleset (size 8) and six packets through its sets, listed alike.</summary>
    static PacketPathSetTrafficTests.Sides Filled()
    {
        var s = new PacketPathSetTrafficTests.Sides();
        try
        {
            s.Apply(Ruleset(8));
            s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7");
            Assert.Contains("127.0.0.7", s.SameListing());
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Six packets fill the sets, then one file removes the table and adds it back: the new sets hold the file's elements
    /// alone, with counters from zero, on both sides, before and after more packets. Added back with `size 4` the new set
    /// is below the six elements the old one held, which does not matter: it holds none of them.
    /// </summary>
    [Theory]
    [InlineData("flush ruleset", 8)]
    [InlineData("delete table ip t", 8)]
    [InlineData("flush ruleset", 4)]
    [InlineData("delete table ip t", 4)]
    public void ATableAddedBackInTheSameTransactionStartsWithItsOwnElements(string removal, int size)
    {
        using var s = Filled();
        s.Apply(removal + "\n" + Ruleset(size));
        var listing = s.SameListing();
        Assert.DoesNotContain("127.0.0.3", listing);
        Assert.Contains("10.0.0.1", listing);
        s.Send(12, "127.0.0.2", "127.0.0.8");
        listing = s.SameListing();
        Assert.Contains("127.0.0.8", listing);
        Assert.DoesNotContain("127.0.0.5", listing);
    }

    /// <summary>
    /// `flush chain` leaves the sets unreferenced, `delete set` and `add set` make them anew and the rules come back: the
    /// kernel accepts it in one transaction, and the new sets hold the file's elements alone.
    /// </summary>
    [Fact]
    public void ASetDeletedAndAddedBackInTheSameTransactionStartsWithItsOwnElements()
    {
        using var s = Filled();
        s.Apply("flush chain ip t out\ndelete set ip t seen\ndelete set ip t timed\ndelete set ip t hits\n" + Ruleset(8));
        var listing = s.SameListing();
        Assert.DoesNotContain("127.0.0.3", listing);
        s.Send(12, "127.0.0.2", "127.0.0.8");
        Assert.Contains("127.0.0.8", s.SameListing());
    }

    /// <summary>
    /// A counter map deleted and added back (its rule flushed and added again) is another set, but the named counter its
    /// element names is not: the kernel keeps counting it (6.18: packets 2, then 3). bpfilterd took the recreated map's
    /// element statements (its objects' counters) for counters of its own elements and started the named counter anew.
    /// </summary>
    [Fact]
    public void ANamedCounterThatARecreatedCounterMapNamesKeepsCounting()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply("""
            table ip t {
                counter c1 {}
                map m { type ipv4_addr : counter; elements = { 127.0.0.2 : "c1" }; }
                chain out {
                    type filter hook output priority 0; policy accept;
                    udp dport 9 counter name ip daddr map @m
                }
            }
            """);
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        s.Send(9, "127.0.0.2", "127.0.0.2");
        s.SameListingWith("packets 2 bytes 58");
        s.Apply("""
            flush chain ip t out
            delete map ip t m
            add map ip t m { type ipv4_addr : counter; elements = { 127.0.0.2 : "c1" }; }
            add rule ip t out udp dport 9 counter name ip daddr map @m
            """);
        s.Send(9, "127.0.0.2");
        s.SameListingWith("packets 3 bytes 87");
    }

    /// <summary>The same file without the removal keeps the sets (another transaction adding what exists): their elements stay.</summary>
    [Fact]
    public void TheTableAddedAgainWithoutRemovalKeepsThePacketPathsElements()
    {
        using var s = Filled();
        s.Apply("table ip t {\n" + Sets(8) + "\n}\n");
        Assert.Contains("127.0.0.3", s.SameListing());
    }
}
