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
        using var twin = new ElementTwin(ElementQuotasAndLimits, placement);
        twin.Round("first burst");
        var first = twin.List();
        Assert.Contains("udp dport 9 ip saddr @q counter packets 2 bytes 58", first); // the third is beyond the quota
        Assert.Contains("udp dport 10 ip saddr @l counter packets 3 bytes 87", first);
        Assert.Contains("udp dport 11 counter packets 2 bytes 58", first); // the limit over broke the vmap twice

        twin.Apply("add element ip t q { 10.9.9.10 }\n");
        twin.Round("after adding an element");
        twin.Restarts();
        Assert.Contains("udp dport 10 ip saddr @l counter packets 4 bytes 116", twin.List()); // the burst of 4, then nothing

        // an element deleted and added again starts a fresh quota (nft_set_elem_expr_clone), in its own commits
        twin.Apply("delete element ip t q { SRC }\n");
        twin.Apply("add element ip t q { SRC }\n");
        twin.Round("after deleting and adding an element with a quota");
        Assert.Contains("udp dport 9 ip saddr @q counter packets 4 bytes 116", twin.List());
    }
}
