using Bpfilter.Daemon.Tests.Server;
using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Kernel;
using Nft.Netlink;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A rule reset (NFT_MSG_GETRULE_RESET, the dump `nft reset rules` sends; nft 1.0.6 has no such command, so the test
/// sends the dump itself to both) of rules with anonymous quotas, in BPF and in the kernel's nf_tables, compared with
/// the kernel (6.18): nft_quota_do_dump with reset takes back what the quota consumed, so it lets traffic through
/// again, and the rule's counters restart. Measured with `until 100 bytes used 40 bytes` and 29-byte datagrams: two of
/// four pass, the reset lists `quota 100 bytes`, then three of four pass (from 0: used 87, then 100). Before branch `quotareset`
/// bpfilterd reset the counters alone: its quota stayed depleted (and listed `used 100 bytes`).
/// </summary>
public sealed class RuleQuotaResetTrafficTests
{
    /// <summary>Port 13's rule counts before its quota: the reset's order within a rule does not matter; the rule after it counts those let through.</summary>
    const string Netdev = """
        table netdev t {
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 quota until 100 bytes used 40 bytes counter
                udp dport 13 counter quota over 90 bytes used 10 bytes drop
                udp dport 13 counter
            }
        }
        """;

    /// <summary>GETRULE_RESET of table netdev t, dumped by the kernel and by bpfilterd (framed as the interposer frames it).</summary>
    static void ResetRules(PacketPathSetTrafficTests.Sides s)
    {
        var filter = new Rule { Table = "t" };
        using (var kernel = KernelNfTablesSocket.OpenInNamespace(s.Kernel.NetnsPath))
            Assert.Contains(kernel.Dump<Rule>(NftMsgType.GetRuleReset, NfProto.Netdev, filter), r => r.Table == "t");
        using var daemon = new FrameClient(s.Rig.Daemon.SocketPath);
        var w = new NetlinkWriter();
        NftMessage.Write(w, NftMsgType.GetRuleReset, NlmFlags.Request | NlmFlags.Dump, 1, 4242, NfProto.Netdev, 0, filter, WireFormat.Kernel);
        var reply = daemon.Call(4242, w.WrittenSpan);
        Assert.NotEmpty(reply);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ARuleResetLetsItsQuotaLetTrafficThroughAgain(bool inKernel)
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(inKernel ? Netdev.Replace("counter\n    }", "counter\n        udp dport 14 log group 1\n    }") : Netdev);
        Assert.Contains(inKernel ? "table netdev t chain in: kernel nf_tables" : "table netdev t chain in: BPF", s.Rig.Explain());
        foreach (var port in new[] { 12, 13 }) s.Send(port, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        var depleted = s.SameListing("table netdev t");
        Assert.Contains("quota 100 bytes used 100 bytes counter packets 2 bytes 58", depleted);

        ResetRules(s);
        var reset = s.SameListing("table netdev t");
        Assert.DoesNotContain("used", reset);
        Assert.DoesNotContain("packets 2", reset);
        foreach (var port in new[] { 12, 13 }) s.Send(port, "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5");
        var again = s.SameListing("table netdev t");
        Assert.Contains("quota 100 bytes used 100 bytes counter packets 3 bytes 87", again);
        Assert.Contains("counter packets 4 bytes 116 quota over 90 bytes used 90 bytes drop\n\t\tudp dport 13 counter packets 3 bytes 87", again);
    }
}
