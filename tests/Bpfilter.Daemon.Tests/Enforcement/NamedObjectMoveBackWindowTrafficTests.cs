using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// <see cref="NetfilterMoveBackWindowTrafficTests"/> and <see cref="QuotaMoveBackWindowTrafficTests"/> for a named counter and
/// a named quota: an inet input chain whose `counter name c drop` (`quota name q drop`) rule moves back to a link at
/// priority +1, after the kernel's copy, while one-byte datagrams stream to it. The copy drops each datagram its rule
/// counts until its commit, and the link never sees them: the object must go on from the kernel's count at the commit.
/// nf_tables' DELOBJ notification carries no object state (6.18), so the commit keeps the objects (no rule names them
/// any more), the daemon reads them once it is live and deletes them in a second kernel transaction. Before branch
/// `namedfinal` the object went on from its count read before the commit, and what the copy counted after that read
/// was lost (hundreds of datagrams). Tolerance: <see cref="XdpMoveWindowTrafficTests.Slack"/> datagrams, as the other
/// window tests: a datagram already inside the copy's rules on another CPU when the object is read is counted there after.
/// </summary>
public sealed partial class NamedObjectMoveBackWindowTrafficTests
{
    const long DatagramBytes = QuotaMoveBackWindowTrafficTests.DatagramBytes;

    [Fact]
    public void ANamedCounterDropRuleMovingBackToALinkAfterTheKernelsCopyGoesOnFromItsFinalCount()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        var r = NetfilterMoveBackWindowTrafficTests.MoveBackAfterTheCopy(s, """
            table inet t {
                counter c {
                }
                chain in {
                    type filter hook input priority 0; policy accept;
                    udp dport 9 counter name "c" drop
                    udp dport 14 reject
                }
            }
            """);
        var (k, d) = s.Command("list", "table", "inet", "t");
        var (kc, dc) = (XdpMoveWindowTrafficTests.Counted(k, NamedCount()), XdpMoveWindowTrafficTests.Counted(d, NamedCount()));
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, counted {kc}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, counted {dc}";
        Console.WriteLine(report);
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && kc == r[0].Sent, report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && Math.Abs(dc - r[1].Sent) <= XdpMoveWindowTrafficTests.Slack, $"{report}\n{s.Rig.Daemon.Log}");
        Assert.Contains("named object(s) carried from the kernel's count once its commit was live", s.Rig.Daemon.Log);
        AssertNoObjectLeftInTheKernel(s);
    }

    [Fact]
    public void ANamedQuotaDropRuleMovingBackToALinkAfterTheKernelsCopyGoesOnFromItsFinalConsumption()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        var r = NetfilterMoveBackWindowTrafficTests.MoveBackAfterTheCopy(s, """
            table inet t {
                quota q {
                    until 1000000000 bytes
                }
                chain in {
                    type filter hook input priority 0; policy accept;
                    udp dport 9 quota name "q" drop
                    udp dport 14 reject
                }
            }
            """);
        var (k, d) = s.Command("list", "table", "inet", "t");
        var (ku, du) = (QuotaMoveBackWindowTrafficTests.Used(k), QuotaMoveBackWindowTrafficTests.Used(d));
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, used {ku}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, used {du}";
        Console.WriteLine(report);
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && ku == r[0].Sent * DatagramBytes, report);
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && Math.Abs(du - r[1].Sent * DatagramBytes) <= XdpMoveWindowTrafficTests.Slack * DatagramBytes,
            $"{report}\n{s.Rig.Daemon.Log}");
        Assert.Contains("named object(s) carried from the kernel's count once its commit was live", s.Rig.Daemon.Log);
        AssertNoObjectLeftInTheKernel(s);
    }

    /// <summary>The second kernel transaction deleted the objects kept for the read: the daemon's kernel holds no table t.</summary>
    static void AssertNoObjectLeftInTheKernel(PacketPathSetTrafficTests.Sides s)
    {
        var listing = s.Rig.Daemon.Ns.Exec("nft", ["list", "ruleset"]);
        Assert.True(listing.Exit == 0, listing.Stderr);
        Assert.DoesNotContain("table inet t", listing.Stdout);
    }

    [GeneratedRegex(@"counter c \{\s*packets (\d+) bytes \d+")]
    private static partial Regex NamedCount();
}
