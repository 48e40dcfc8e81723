namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// `add @s { ip daddr counter }` on a set that declares statements of its own (`set s { ...; counter; }`), against the
/// kernel 6.18: nft_dynset_init takes the rule's statements (the same kinds as the set's, in order, else EOPNOTSUPP) and
/// clones them, not the set's, into the elements it makes (a quota of the rule's size), but nft_dynset_dump puts none of
/// them when the set has statements: `nft list` shows `add @s { ip daddr }`, in text and in JSON. The chain compiled to BPF.
/// </summary>
public sealed class DynsetOnSetWithStatementsTrafficTests
{
    const string Ruleset = """
        table ip t {
            set counted {
                type ipv4_addr
                flags dynamic
                counter
            }
            set q {
                type ipv4_addr
                flags dynamic
                quota 1000 bytes
            }
            set two {
                type ipv4_addr
                flags dynamic
                counter
                quota 1000 bytes
            }
            set plain {
                type ipv4_addr
                flags dynamic
            }
            chain c {
                type filter hook output priority 0; policy accept;
                udp dport 9 add @counted { ip daddr counter }
                udp dport 9 add @q { ip daddr quota 50 bytes }
                udp dport 9 add @two { ip daddr counter quota 40 bytes }
                udp dport 9 add @plain { ip daddr counter }
                udp dport 10 add @counted { ip daddr }
            }
        }
        """;

    [Fact]
    public void TheRuleListsWithoutItsStatementsWhichItsElementsRun()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        s.Send(9, "127.0.0.2", "127.0.0.2", "127.0.0.2");
        s.Send(10, "127.0.0.3");
        var listing = s.SameListingWith("udp dport 9 add @counted { ip daddr }\n", "udp dport 9 add @q { ip daddr }\n",
            "udp dport 9 add @two { ip daddr }\n",
            // a set without statements of its own lists the rule's
            "udp dport 9 add @plain { ip daddr counter }\n",
            "127.0.0.2 counter packets 3 bytes 87, 127.0.0.3 counter packets 1 bytes 29",
            // the rule's quota, not the set's 1000 bytes
            "127.0.0.2 quota 50 bytes used 50 bytes", "127.0.0.2 counter packets 3 bytes 87 quota 40 bytes used 40 bytes");
        Assert.DoesNotContain("add @counted { ip daddr counter", listing);

        var (kj, dj) = s.Command("-j", "list", "chain", "ip", "t", "c");
        Assert.True(kj.Exit == 0 && dj.Exit == 0, $"{kj.Stderr} {dj.Stderr}");
        Assert.Equal(kj.Stdout, dj.Stdout);
        Assert.DoesNotContain("counter", kj.Stdout.Split("\"@plain\"")[0]);
    }

    /// <summary>
    /// A rule's statements of other kinds or number than the set's are refused on both sides with the same error
    /// (EOPNOTSUPP; EINVAL for one beyond the set's).
    /// </summary>
    [Fact]
    public void StatementsOfAnotherKindThanTheSetsAreRefused()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        foreach (var rule in new[] { "add @counted { ip daddr limit rate 1/second }", "add @two { ip daddr quota 40 bytes counter }",
                     "add @two { ip daddr counter }", "add @counted { ip daddr counter quota 40 bytes }" })
        {
            var (k, d) = s.Nft($"add rule ip t c {rule}");
            Assert.True(k.Exit != 0, $"kernel took {rule}");
            Assert.True(d.Exit != 0, $"bpfilterd took {rule}");
            Assert.Equal(k.Stderr, d.Stderr);
        }
        s.SameListing();
    }
}
