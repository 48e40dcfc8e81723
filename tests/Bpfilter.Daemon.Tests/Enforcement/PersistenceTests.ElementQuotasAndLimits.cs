using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    // every packet is 29 bytes (IPv4 20, UDP 8, one byte): the quotas end within the bursts; the limits
    // refill one packet an hour, nothing within the test
    static string ElementQuotasAndLimits(string src) => $$"""
        table ip t {
            set q {
                type ipv4_addr
                quota 60 bytes
                elements = { {{src}}, 10.9.9.9 }
            }
            set o {
                type ipv4_addr
                counter quota over 100 bytes
                elements = { {{src}} }
            }
            set l {
                type ipv4_addr
                limit rate 1/hour burst 4 packets
                elements = { {{src}} }
            }
            map v {
                type inet_service : verdict
                limit rate over 1/hour burst 2 packets
                elements = { 11 : drop }
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 ip saddr @q counter
                udp dport 9 ip saddr != @q counter
                udp dport 10 ip saddr @o counter
                udp dport 10 ip saddr @l counter
                udp dport vmap @v
                udp dport 11 counter
            }
        }
        """;

    /// <summary>
    /// Per-element quotas and limits against the kernel: the same ruleset, elements and UDP packets in a kernel
    /// namespace and in bpfilterd (auto placement and BPF only, pinned), the same listings (rule counters show
    /// where a quota or limit broke the rule, elements list their quota's `used`): a set with `quota` for every
    /// element, `counter quota over` (the counter before the quota counts every packet), `limit`, a verdict map
    /// with `limit rate over` (a broken limit sends the packet to the next rule); then a commit adding an element
    /// (the program is compiled again), a kill and a clean stop with restarts: quotas and buckets continue; an
    /// element deleted and added again starts a fresh quota.
    /// </summary>
    [Theory]
    [InlineData("bpf-only")]
    [InlineData("auto")]
    public void ElementQuotasAndLimitsRunInBpfAsInTheKernelThroughCommitsAndRestarts(string placement)
    {
        using var kernel = new NetNs();
        kernel.Ip("link", "set", "lo", "up");
        var load = kernel.Exec("nft", ["-f", "-"], ElementQuotasAndLimits("127.0.0.1"));
        Assert.True(load.Exit == 0, load.Stderr);

        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path, "--placement", placement);
        rig.Nft(ElementQuotasAndLimits(EnforcementRig.PeerAddr));
        Assert.Contains("table ip t chain in: BPF", rig.Explain());

        void Round(string step)
        {
            var sent = kernel.Exec("bash", ["-c", ElementBurst("127.0.0.1")]);
            Assert.True(sent.Exit == 0, sent.Stderr);
            sent = rig.Peer.Exec("bash", ["-c", ElementBurst(EnforcementRig.FwAddr)]);
            Assert.True(sent.Exit == 0, sent.Stderr);
            var expected = kernel.Exec("nft", ["list", "ruleset"]).Stdout;
            var actual = rig.ListRuleset().Replace(EnforcementRig.PeerAddr, "127.0.0.1");
            Assert.True(expected == actual, $"{step}: the kernel lists\n{expected}\nbpfilterd lists\n{actual}\n{rig.Daemon.Log}");
        }

        Round("first burst");
        var first = kernel.Exec("nft", ["list", "ruleset"]).Stdout;
        Assert.Contains("udp dport 9 ip saddr @q counter packets 2 bytes 58", first); // the third is beyond the quota
        Assert.Contains("udp dport 10 ip saddr @l counter packets 3 bytes 87", first);
        Assert.Contains("udp dport 11 counter packets 2 bytes 58", first); // the limit over broke the vmap twice

        const string add = "add element ip t q { 10.9.9.10 }\n";
        Assert.True(kernel.Exec("nft", ["-f", "-"], add).Exit == 0);
        rig.Nft(add);
        Round("after adding an element");

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        Round("after a kill and a restart");
        Assert.Equal(0, rig.Daemon.Terminate());
        rig.Daemon.Restart();
        Round("after a clean stop and a restart");
        var last = kernel.Exec("nft", ["list", "ruleset"]).Stdout;
        Assert.Contains("udp dport 10 ip saddr @l counter packets 4 bytes 116", last); // the burst of 4, then nothing

        // an element deleted and added again starts a fresh quota (nft_set_elem_expr_clone), in its own commits
        foreach (var change in new[] { "delete element ip t q { SRC }\n", "add element ip t q { SRC }\n" })
        {
            Assert.True(kernel.Exec("nft", ["-f", "-"], change.Replace("SRC", "127.0.0.1")).Exit == 0);
            rig.Nft(change.Replace("SRC", EnforcementRig.PeerAddr));
        }
        Round("after deleting and adding an element with a quota");
        Assert.Contains("udp dport 9 ip saddr @q counter packets 4 bytes 116", kernel.Exec("nft", ["list", "ruleset"]).Stdout);
    }
}
