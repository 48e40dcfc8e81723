using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// <see cref="NetfilterMoveBackWindowTrafficTests"/> for a quota: an inet input chain whose `quota until N bytes drop` rule
/// moves back to a link at priority +1, after the kernel's copy, while one-byte datagrams (29
/// bytes at the input hook) stream to it. The copy drops each datagram its quota consumes until its commit, and the link
/// never sees them: the quota's `used` must go on from what the kernel's copy consumed at the commit (the DELRULE
/// notification the commit echoes), as the kernel's listing, which consumed every datagram sent. Before branch
/// `quotaecho` the quota went on from the kernel's `used` read before the early install, and what the copy consumed
/// after that read was lost (131 datagrams short). A named quota (DELOBJ carries no NFTA_OBJ_DATA) is read after the
/// commit instead: <see cref="NamedObjectMoveBackWindowTrafficTests"/>.
/// </summary>
public sealed partial class QuotaMoveBackWindowTrafficTests
{
    /// <summary>At the input hook a one-byte UDP datagram over IPv4 is 20 + 8 + 1 bytes.</summary>
    internal const long DatagramBytes = 29;

    [Fact]
    public void AQuotaDropRuleMovingBackToALinkAfterTheKernelsCopyGoesOnFromItsFinalConsumption()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        var r = NetfilterMoveBackWindowTrafficTests.MoveBackAfterTheCopy(s, """
            table inet t {
                chain in {
                    type filter hook input priority 0; policy accept;
                    udp dport 9 quota until 1000000000 bytes drop
                    udp dport 14 reject
                }
            }
            """);
        var (k, d) = s.Command("list", "table", "inet", "t");
        var (ku, du) = (Used(k), Used(d));
        var report = $"kernel: sent {r[0].Sent}, received {r[0].Got9}, used {ku}; bpfilterd: sent {r[1].Sent}, received {r[1].Got9}, used {du}";
        Console.WriteLine(report);
        Assert.True(r[0] is { Got9: 0, Got10: 1 } && ku == r[0].Sent * DatagramBytes, report);
        // a datagram already inside the copy's rules on another CPU when its commit built the notification is consumed
        // there after it (1 of 11,373 once)
        Assert.True(r[1] is { Got9: 0, Got10: 1 } && Math.Abs(du - r[1].Sent * DatagramBytes) <= XdpMoveWindowTrafficTests.Slack * DatagramBytes,
            $"{report}\n{s.Rig.Daemon.Log}");
        Assert.Contains("kernel commit: 1 quota(s) carried from the kernel's final consumption", s.Rig.Daemon.Log);
    }

    /// <summary>The quota's `used` in a table's listing, in bytes (nft prints it in the largest unit that divides it).</summary>
    internal static long Used(ProcessResult listing)
    {
        Assert.True(listing.Exit == 0, listing.Stderr);
        var m = UsedBytes().Match(listing.Stdout);
        Assert.True(m.Success, listing.Stdout);
        var unit = m.Groups[2].Value switch { "bytes" => 1L, "kbytes" => 1L << 10, "mbytes" => 1L << 20, _ => 1L << 30 };
        return long.Parse(m.Groups[1].Value) * unit;
    }

    [GeneratedRegex(@"used (\d+) (bytes|kbytes|mbytes|gbytes)")]
    private static partial Regex UsedBytes();
}
