using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    static string ElementCounters(string src) => $$"""
        table ip t {
            set s {
                type ipv4_addr
                counter
                elements = { {{src}}, 10.9.9.9 counter packets 5 bytes 100 }
            }
            set n {
                type ipv4_addr
                counter
                elements = { {{src}}, 10.9.9.8 }
            }
            map v {
                type inet_service : verdict
                counter
                elements = { 9 : accept, 11 : drop, 12 : drop }
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 ip saddr @s counter
                udp dport 10 ip saddr != @n counter
                udp dport 10 ip saddr @n counter
                udp dport vmap @v
            }
        }
        """;

    static string ElementBurst(string addr) => $"for i in 1 2 3; do for p in 9 10 11; do printf x > /dev/udp/{addr}/$p; done; done";

    /// <summary>
    /// Per-element counters against the kernel: the same ruleset, elements and UDP packets in a kernel namespace
    /// and in bpfilterd (BPF only, pinned), the same listings: a set with `counter` (every element gets one), an
    /// element given its own `counter packets 5 bytes 100`, a `!= @s` lookup (counts no element), a verdict map
    /// with counters; then a commit that adds an element (the program is compiled again), and a kill and a
    /// clean stop with restarts: every element keeps its count.
    /// </summary>
    [Fact]
    public void ElementsCountInBpfAsInTheKernelThroughCommitsAndRestarts()
    {
        using var twin = new ElementTwin(ElementCounters, "bpf-only");
        twin.Round("first burst");
        var first = twin.List("set", "ip", "t", "s");
        Assert.Contains("127.0.0.1 counter packets 3 bytes 87", first);
        Assert.Contains("10.9.9.9 counter packets 5 bytes 100", first);
        // `!= @n` matched nothing of n's and `@n` counts its element
        var n = twin.List("set", "ip", "t", "n");
        Assert.Contains("127.0.0.1 counter packets 3 bytes 87", n);
        Assert.Contains("10.9.9.8 counter packets 0 bytes 0", n);

        // an element with a counter is a new slot: bpfilterd compiles the chain again, the others keep their counts
        twin.Apply("add element ip t s { 10.9.9.10 }\ndelete element ip t v { 12 }\n");
        twin.Round("after adding an element");
        twin.Restarts();
        Assert.Contains("127.0.0.1 counter packets 12 bytes 348", twin.List("set", "ip", "t", "s"));
    }
}
