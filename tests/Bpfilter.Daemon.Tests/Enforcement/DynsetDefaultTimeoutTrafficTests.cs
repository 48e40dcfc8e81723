using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A dynset rule without a timeout of its own on a set with `flags timeout` (kernel 6.18): nft_dynset_init decides when
/// the rule is made whether its element template has a timeout, from the set's default then. A rule made while the set
/// had no default makes elements that never expire, even after `add set` gives the set one; yet its `update` renews an
/// element that expires (the control plane's, with its own timeout) to the set's current default. A rule made after the
/// default appears, or in a batch that takes it away, gives the current default (none: never expire). Compared with the
/// kernel, the chain compiled to BPF.
/// </summary>
public sealed class DynsetDefaultTimeoutTrafficTests
{
    const string Ruleset = """
        table ip t {
            set a {
                type ipv4_addr
                flags dynamic,timeout
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 add @a { ip daddr }
                udp dport 13 update @a { ip daddr }
            }
        }
        """;

    /// <summary>The set gets a default after the rules of ports 12 and 13, in a batch that also adds the rule of port 16.</summary>
    const string DefaultArrives = """
        add set ip t a { type ipv4_addr; flags dynamic,timeout; timeout 1h; }
        add rule ip t out udp dport 16 add @a { ip daddr }
        """;

    [Fact]
    public void RulesMadeWithoutADefaultMakeElementsThatNeverExpire()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        MakeRules(s);
        Check(s);
    }

    /// <summary>The same after a kill and a restart of bpfilterd between the default's arrival and the packets: the state file keeps each rule's fact.</summary>
    [Fact]
    public void ARestartKeepsWhichRulesMakeElementsThatNeverExpire()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides(pinDir: pins.Path);
        MakeRules(s);
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        Check(s);
    }

    /// <summary>The ruleset, an expiring element of the control plane's, the default with the rule of port 16, then the rule of port 17.</summary>
    static void MakeRules(PacketPathSetTrafficTests.Sides s)
    {
        s.Apply(Ruleset);
        s.Apply("add element ip t a { 127.0.0.5 timeout 20m }");
        s.Apply(DefaultArrives);
        s.Apply("add rule ip t out udp dport 17 add @a { ip daddr }");
    }

    static void Check(PacketPathSetTrafficTests.Sides s)
    {
        s.Send(12, "127.0.0.2");   // made before the default: never expires
        s.Send(13, "127.0.0.3", "127.0.0.5");   // the same, and the expiring 127.0.0.5 renewed to the default now
        s.Send(16, "127.0.0.4");   // made in the batch that brought the default: init saw none yet, never expires
        s.Send(17, "127.0.0.6");   // made after it: the default
        s.Apply("add element ip t a { 10.1.1.1 }");
        var listing = s.SameListing();
        Assert.Contains("127.0.0.5 timeout 20m expires 59m", listing);
        Assert.Contains("127.0.0.6 expires 59m", listing);
        Assert.Contains("10.1.1.1 expires 59m", listing);
        foreach (var permanent in new[] { "127.0.0.2", "127.0.0.3", "127.0.0.4" })
        {
            Assert.Matches($@"{permanent.Replace(".", @"\.")}[,\s}}]", listing);
            Assert.DoesNotContain(permanent + " expires", listing);
        }
    }
}
