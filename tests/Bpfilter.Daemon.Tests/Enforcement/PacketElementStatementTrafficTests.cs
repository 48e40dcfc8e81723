using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Statements of elements the packet path adds (`add @s { ip daddr counter }`, `update @s { ip daddr quota ... }`,
/// a set declaring `counter`, a meter) in BPF against the kernel: the same ruleset in a kernel namespace and in
/// bpfilterd (auto placement and `--placement bpf-only`), the same UDP packets through the output hook, then the
/// same listings (every element's counter and quota `used`, the rules' counters; `expires` within the tolerance of
/// <see cref="PacketPathSetTrafficTests"/>), also after a recompile, a commit of other elements and restarts (pinned maps); per-element `limit`s likewise.
/// </summary>
public sealed partial class PacketElementStatementTrafficTests
{
    const string Ruleset = """
        table ip t {
            set cnt {
                type ipv4_addr
                size 4
                flags dynamic
            }
            set q {
                type ipv4_addr
                flags dynamic,timeout
                timeout 1m
            }
            set d {
                type ipv4_addr
                flags dynamic
                counter
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 9 add @cnt { ip daddr counter }
                udp dport 9 update @q { ip daddr counter quota 60 bytes } counter
                udp dport 10 add @d { ip daddr }
                udp dport 10 ip daddr @d counter
                udp dport 11 meter m size 16 { ip daddr counter } counter
            }
        }
        """;

    [GeneratedRegex(@"udp dport 9 update @q \{ ip daddr counter quota 60 bytes \} counter packets (\d+)")]
    private static partial Regex QuotaRule();

    [Theory]
    [InlineData("auto")]
    [InlineData("bpf-only")]
    public void CountersAndQuotasOfPacketPathElementsRunInBpfAsInTheKernel(string placement)
    {
        using var s = new PacketPathSetTrafficTests.Sides(placement);
        s.Apply(Ruleset);
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        // three 29-byte packets to each address: the quota (60 bytes) lets two through, the third breaks the rule
        for (var i = 0; i < 3; i++)
        {
            s.Send(9, "127.0.0.2", "127.0.0.3");
            s.Send(10, "127.0.0.4");
            s.Send(11, "127.0.0.5", "127.0.0.6");
        }
        s.Send(9, "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"); // `cnt` holds 4: the fifth address finds it full
        var listing = s.SameListingWith("127.0.0.2 counter packets 3 bytes 87", "quota 60 bytes used 60 bytes");
        Assert.Equal("8", QuotaRule().Match(listing).Groups[1].Value); // 2 + 2 within the quotas of 127.0.0.2 and .3, and the first packet of .4 to .7
        Assert.Contains("127.0.0.4 counter packets 6 bytes 174", listing); // the set's counter: the add and the lookup
        Assert.Equal(s.Command("list", "meter", "ip", "t", "m").Kernel.Stdout, s.Command("list", "meter", "ip", "t", "m").Daemon.Stdout);

        // a rule added to the chain recompiles the program: the elements keep their state
        s.Apply("add rule ip t out udp dport 12 counter");
        s.Send(9, "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 4 bytes 116", s.SameListing());
    }

    [Fact]
    public void TheirStateSurvivesACommitOfOtherElementsAndRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        s.Apply(Ruleset);
        s.Send(9, "127.0.0.2");
        s.Send(10, "127.0.0.4");
        s.Apply("add element ip t cnt { 127.0.0.30 }"); // an element-only batch: the program is kept
        s.Send(9, "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", s.SameListing());
        s.AcrossRestarts(() => { s.Send(9, "127.0.0.2"); s.Send(10, "127.0.0.4"); }, () => s.Send(9, "127.0.0.2"));
        s.SameListingWith("127.0.0.2 counter packets 4 bytes 116", "127.0.0.4 counter packets 4 bytes 116");
    }

    /// <summary>
    /// Per-element limits (a meter's, an `update`'s with `over`, a byte limit with a counter after it, and a lookup running
    /// them) in BPF against the kernel: rates per hour, so the few seconds the test takes refill no packet's cost and the
    /// counts are the same on both sides. Each address's first packets pass within its own full bucket, the rest break;
    /// a recompile keeps the buckets.
    /// </summary>
    [Theory]
    [InlineData("auto")]
    [InlineData("bpf-only")]
    public void LimitsOfPacketPathElementsRunInBpfAsInTheKernel(string placement)
    {
        const string limited = """
            table ip t {
                set s {
                    type ipv4_addr
                    size 16
                    flags dynamic
                }
                set o {
                    type ipv4_addr
                    flags dynamic,timeout
                    timeout 1m
                }
                chain out {
                    type filter hook output priority 0; policy accept;
                    udp dport 9 meter m size 16 { ip daddr limit rate 1/hour burst 3 packets } counter
                    udp dport 10 update @o { ip daddr counter limit rate over 1/hour burst 2 packets } counter
                    udp dport 11 add @s { ip daddr limit rate 100 bytes/hour counter } counter
                    udp dport 12 ip daddr @s counter
                }
            }
            """;
        using var s = new PacketPathSetTrafficTests.Sides(placement);
        s.Apply(limited);
        Assert.Contains("table ip t chain out: BPF", s.Rig.Explain());
        for (var i = 0; i < 5; i++)
        {
            s.Send(9, "127.0.0.2", "127.0.0.3");
            s.Send(10, "127.0.0.4");
            s.Send(11, "127.0.0.5");
        }
        s.Send(11, "127.0.0.6");
        s.Send(12, "127.0.0.5", "127.0.0.6"); // .5's bucket is spent (the lookup breaks), .6's has room for one more
        var listing = s.SameListing();
        Assert.Matches(@"udp dport 9 meter m size 16 \{ ip daddr limit rate 1/hour burst 3 packets \} counter packets 6 ", listing);
        Assert.Contains("counter packets 3 ", listing.Split('\n').Single(l => l.Contains("dport 10 update"))); // `over`: the three beyond the burst of 2
        Assert.Contains("127.0.0.4 counter packets 5 bytes 145 limit rate over 1/hour burst 2 packets expires", listing);
        Assert.Contains("127.0.0.5 limit rate 100 bytes/hour counter packets 3 bytes 87", listing); // 29 bytes cost 1044 of its 3600 s
        Assert.Contains("counter packets 1 ", listing.Split('\n').Single(l => l.Contains("dport 12")));
        Assert.Equal(s.Command("list", "meter", "ip", "t", "m").Kernel.Stdout, s.Command("list", "meter", "ip", "t", "m").Daemon.Stdout);

        // a rule added to the chain recompiles the program: the elements keep their buckets (spent), a new one gets a full one
        s.Apply("add rule ip t out udp dport 13 counter");
        s.Send(9, "127.0.0.2", "127.0.0.7");
        s.SameListing();
        Assert.Matches(@"udp dport 9 meter m size 16 \{ ip daddr limit rate 1/hour burst 3 packets \} counter packets 7 ", s.SameListing());
    }

    /// <summary>The buckets of a meter's elements survive restarts (pinned bucket map reopened with the set's copies): a spent one stays spent.</summary>
    [Fact]
    public void LimitBucketsSurviveRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        s.Apply("""
            table ip t {
                chain out {
                    type filter hook output priority 0; policy accept;
                    udp dport 9 meter m size 16 { ip daddr limit rate 1/hour burst 2 packets } counter
                }
            }
            """);
        s.Send(9, "127.0.0.2", "127.0.0.2");
        s.AcrossRestarts(() => s.Send(9, "127.0.0.2"), () => s.Send(9, "127.0.0.2", "127.0.0.3"));
        Assert.Contains("counter packets 3 ", s.SameListing()); // the two within .2's bucket and .3's first
    }

    /// <summary>
    /// A rule writing @s replaced by one that gives new elements other statements (scripts/measure-dynset-statement-lists.sh, the
    /// parts one rule writes): the kernel keeps the element with its counter, which goes on counting while the new rule's limit
    /// never runs on it; a new element gets the limit; a control-plane element runs none; a lookup runs each element's own
    /// list. The same listings in bpfilterd, also after restarts (the lists the elements' tags name are saved with the state).
    /// </summary>
    [Fact]
    public void ElementsKeepTheStatementListTheyWereMadeWithAsInTheKernel()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        s.Apply(WrittenSet("udp dport 9999 update @s { ip daddr counter }"));
        s.Send(9999, "127.0.0.1", "127.0.0.1");
        var handle = s.SameHandle("c", "update @s");
        s.Apply($"replace rule ip t c handle {handle} udp dport 9999 update @s {{ ip daddr limit rate 1/hour burst 2 packets }} counter");
        Assert.Contains("table ip t chain c: BPF", s.Rig.Explain());
        Assert.Contains("127.0.0.1 counter packets 2 ", s.SameListing());
        s.Send(9999, "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.3", "127.0.0.3", "127.0.0.3");
        var listing = s.SameListingWith("127.0.0.1 counter packets 5 ", "127.0.0.3 limit rate 1/hour burst 2 packets");
        Assert.Contains("} counter packets 5 ", listing); // every packet to .1, the two within .3's limit
        s.Apply("add element ip t s { 127.0.0.5 }");
        s.Send(9999, "127.0.0.5", "127.0.0.5");
        s.Apply("insert rule ip t c udp dport 9999 ip daddr @s counter");
        s.Send(9999, "127.0.0.1", "127.0.0.7");
        Assert.Contains("127.0.0.1 counter packets 7 ", s.SameListing()); // the lookup and the update
        s.AcrossRestarts(() =>
        {
            s.Send(9999, "127.0.0.1", "127.0.0.3");
            Assert.Contains("127.0.0.1 counter packets 9 ", s.SameListing());
        }, () => s.Send(9999, "127.0.0.1", "127.0.0.8"));
        s.SameListingWith("127.0.0.1 counter packets 11 ", "127.0.0.8 limit rate 1/hour burst 2 packets");
        // a rule added after the restart recompiles with both lists: .1 keeps counting
        s.Apply("add rule ip t c udp dport 12 counter");
        s.Send(9999, "127.0.0.1");
        Assert.Contains("127.0.0.1 counter packets 13 ", s.SameListing());
    }

    /// <summary>Packets to port 9999 and each address, then the same listings on both sides, which hold <paramref name="expected"/>.</summary>
    static void SendAndList(PacketPathSetTrafficTests.Sides s, string expected, params string[] addresses)
    {
        s.Send(9999, addresses);
        s.SameListingWith(expected);
    }

    /// <summary>`table ip t` with a set `s` of size 100 that output chain `c`'s <paramref name="rules"/> write.</summary>
    static string WrittenSet(params string[] rules) =>
        PacketPathSetTrafficTests.OutputTable("s", "type ipv4_addr; size 100; flags dynamic;", "c", rules);

    /// <summary>
    /// A set of size 100 that `udp dport 9999 update @s { ip daddr limit rate 1/hour burst 2 packets } counter` writes, on
    /// both sides: .1 spends its bucket (its third packet breaks the rule), .2 takes one of its two tokens. Then the rule
    /// is replaced by one giving new elements <paramref name="statements"/>; the chain stays in BPF.
    /// </summary>
    static void SpendOneLimitThenReplace(PacketPathSetTrafficTests.Sides s, string statements)
    {
        s.Apply(WrittenSet("udp dport 9999 update @s { ip daddr limit rate 1/hour burst 2 packets } counter"));
        // .1 spends its bucket (its third packet breaks the rule), .2 takes one of its two tokens
        s.Send(9999, "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2");
        Assert.Contains("} counter packets 3 ", s.SameListing());
        var handle = s.SameHandle("c", "update @s");
        s.Apply($"replace rule ip t c handle {handle} udp dport 9999 update @s {{ ip daddr {statements} }} counter");
        Assert.Contains("table ip t chain c: BPF", s.Rig.Explain());
    }

    /// <summary>
    /// The same for elements with a limit (nft_dynset_new clones the limit, bucket and all, into the element): the rule
    /// replaced by one giving a counter, each old element keeps its limit and its bucket (a spent one stays spent, one with
    /// a token left takes it), a new one gets the counter; the same listings and rule counters in bpfilterd, where the new
    /// program takes the old copies' bucket map. Rates per hour, so the counts are deterministic.
    /// </summary>
    [Fact]
    public void ElementsWithLimitsKeepTheirListAndBucketWhenTheRuleChangesAsInTheKernel()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        SpendOneLimitThenReplace(s, "counter");
        // .1 still breaks the rule, .2 passes once more then breaks it, .3 is new: its counter counts both (the replacing
        // rule's counter starts at 0)
        s.Send(9999, "127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3");
        s.SameListingWith("127.0.0.1 limit rate 1/hour burst 2 packets", "127.0.0.2 limit rate 1/hour burst 2 packets",
            "127.0.0.3 counter packets 2 ", "} counter packets 3 ");
        // replaced back (the lists both live elements carry): each keeps its own, buckets spent
        var handle = s.SameHandle("c", "update @s");
        s.Apply($"replace rule ip t c handle {handle} udp dport 9999 update @s {{ ip daddr limit rate 1/hour burst 2 packets }} counter");
        s.Send(9999, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4");
        s.SameListingWith("127.0.0.3 counter packets 3 ", "127.0.0.4 limit rate 1/hour burst 2 packets", "} counter packets 2 ");
        // through restarts (the shared bucket map pinned with the program that holds it)
        s.AcrossRestarts(() => SendAndList(s, "} counter packets 3 ", "127.0.0.1", "127.0.0.4"),
            () => SendAndList(s, "} counter packets 3 ", "127.0.0.2", "127.0.0.4"));
    }

    /// <summary>
    /// A rule giving the set's elements one limit replaced by one giving two, then the set's `size` grown (`add set` with a
    /// larger one): each needs more buckets than the set's bucket map was made for (2 x limits x size + 1024), and the kernel
    /// keeps every element with its own limit and bucket all the same (6.18: `replace rule` and `add set` both accepted).
    /// bpfilterd copies the buckets into a larger map (BucketCarry); before, it started the set empty. The same listings,
    /// also after a clean and a SIGKILL restart.
    /// </summary>
    [Fact]
    public void ElementsKeepTheirListAndBucketWhenTheNewListOrSizeNeedsMoreBucketsAsInTheKernel()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        SpendOneLimitThenReplace(s, "limit rate 1/hour burst 3 packets limit rate 1/hour burst 5 packets");
        // .1 still breaks the rule, .2 passes once more then breaks it, .3 is new: its first limit lets three through
        s.Send(9999, "127.0.0.1", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.3");
        s.SameListingWith("127.0.0.1 limit rate 1/hour burst 2 packets", "127.0.0.2 limit rate 1/hour burst 2 packets",
            "127.0.0.3 limit rate 1/hour burst 3 packets limit rate 1/hour", "} counter packets 4 ");
        // a larger size: the elements and buckets again carried into a larger map; .4 is new
        s.Apply("add set ip t s { type ipv4_addr; size 300; flags dynamic; }");
        s.Send(9999, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.4");
        s.SameListingWith("size 300", "} counter packets 6 ");
        // through restarts (the larger bucket map pinned with the program that holds it)
        s.AcrossRestarts(() => SendAndList(s, "} counter packets 7 ", "127.0.0.2", "127.0.0.4"),
            () => SendAndList(s, "} counter packets 7 ", "127.0.0.1", "127.0.0.4"));
    }

    /// <summary>
    /// The measurement's two rules (scripts/measure-dynset-statement-lists.sh): `update @s { ip daddr limit rate 1/hour burst 2
    /// packets } counter` then `update @s { ip daddr counter quota 100000 bytes } counter`, with a rule on another port making
    /// elements with a counter (as the measurement's replaced rule made .1). The second rule never makes an element (the first
    /// makes each first) and runs each found element's own list: .4's limit runs twice per packet, so its second packet
    /// breaks the first rule (and the second); .1 counts once per rule; a control-plane element runs none; a lookup put first
    /// runs each element's own list. The chain runs in BPF; the listings equal the kernel's, also after a clean and a SIGKILL
    /// restart and a recompile.
    /// </summary>
    [Fact]
    public void TwoRulesGivingOneSetDifferentListsRunInBpfAsInTheKernel()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        s.Apply(WrittenSet("udp dport 9998 update @s { ip daddr counter }",
            "udp dport 9999 update @s { ip daddr limit rate 1/hour burst 2 packets } counter",
            "udp dport 9999 update @s { ip daddr counter quota 100000 bytes } counter"));
        Assert.Contains("table ip t chain c: BPF", s.Rig.Explain());
        s.Send(9998, "127.0.0.1", "127.0.0.1");
        s.Send(9999, "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.3", "127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.4");
        var listing = s.SameListing();
        Assert.Contains("127.0.0.1 counter packets 8 ", listing); // two through the first rule, then three through both
        Assert.Contains("127.0.0.3 limit rate 1/hour burst 2 packets", listing);
        Assert.Contains("127.0.0.4 limit rate 1/hour burst 2 packets", listing);
        // .1's three and .3's first through both rules (.3's limit: the first rule takes one token, the second the other),
        // .4's first: 5 and 5; .3's second and third, .4's second break both
        Assert.Equal(2, Regex.Matches(listing, @"\} counter packets 5 ").Count);
        s.Apply("add element ip t s { 127.0.0.5 }");
        s.Send(9999, "127.0.0.5", "127.0.0.5");
        s.Apply("insert rule ip t c udp dport 9999 ip daddr @s counter");
        s.Send(9999, "127.0.0.1", "127.0.0.7");
        Assert.Contains("127.0.0.1 counter packets 11 ", s.SameListing()); // the lookup and both rules
        s.AcrossRestarts(() =>
        {
            s.Send(9999, "127.0.0.1", "127.0.0.4");
            Assert.Contains("127.0.0.1 counter packets 14 ", s.SameListing());
        }, () =>
        {
            s.Send(9999, "127.0.0.1", "127.0.0.8");
            s.Send(9998, "127.0.0.9");
        });
        s.SameListingWith("127.0.0.1 counter packets 17 ", "127.0.0.8 limit rate 1/hour burst 2 packets",
            "127.0.0.9 counter packets 1 ");
        // a rule added after the restart recompiles alike: the elements keep their lists and the limits their buckets
        s.Apply("add rule ip t c udp dport 12 counter");
        s.Send(9999, "127.0.0.1", "127.0.0.9", "127.0.0.8", "127.0.0.8");
        s.SameListingWith("127.0.0.1 counter packets 20 ", "127.0.0.9 counter packets 4 ");
        Assert.Contains("table ip t chain c: BPF", s.Rig.Explain());
    }

    /// <summary>
    /// A second rule giving @s another list added to a running one, then the first replaced (no limits: the elements are
    /// carried with their lists, see ElementLists): `update @s { ip daddr counter }`, then `udp dport 9998 update @s { ip
    /// daddr counter quota 100000 bytes } counter` making .6 with its counter and quota, which the first rule then runs; the
    /// first rule replaced by `update @s { ip daddr quota 50000 bytes }`: old elements keep theirs. Listings equal the
    /// kernel's, also after restarts.
    /// </summary>
    [Fact]
    public void ASecondRuleGivingOneSetAnotherListKeepsTheElementsOfTheFirst()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        s.Apply(WrittenSet("udp dport 9999 update @s { ip daddr counter }"));
        s.Send(9999, "127.0.0.1", "127.0.0.1");
        s.Apply("add rule ip t c udp dport 9998 update @s { ip daddr counter quota 100000 bytes } counter");
        Assert.Contains("table ip t chain c: BPF", s.Rig.Explain());
        s.Send(9998, "127.0.0.6", "127.0.0.1");
        s.Send(9999, "127.0.0.6", "127.0.0.6", "127.0.0.1");
        s.SameListingWith("127.0.0.1 counter packets 4 ", "127.0.0.6 counter packets 3 bytes 87 quota 100000 bytes used 87 bytes");
        var handle = s.SameHandle("c", "dport 9999 update @s");
        s.Apply($"replace rule ip t c handle {handle} udp dport 9999 update @s {{ ip daddr quota 50000 bytes }}");
        s.Send(9999, "127.0.0.1", "127.0.0.6", "127.0.0.2");
        s.SameListingWith("127.0.0.1 counter packets 5 ", "127.0.0.2 quota 50000 bytes used 29 bytes");
        Assert.Contains("table ip t chain c: BPF", s.Rig.Explain());
        s.AcrossRestarts(() =>
        {
            s.Send(9999, "127.0.0.1", "127.0.0.2");
            s.Send(9998, "127.0.0.1", "127.0.0.3");
            s.SameListing();
        }, () => s.Send(9999, "127.0.0.1", "127.0.0.3", "127.0.0.6"));
        var listing = s.SameListing();
        Assert.Contains("127.0.0.1 counter packets 8 ", listing);
        s.Apply("add rule ip t c udp dport 12 counter");
        s.Send(9999, "127.0.0.1", "127.0.0.6");
        Assert.Contains("127.0.0.1 counter packets 9 ", s.SameListing());
    }
}
