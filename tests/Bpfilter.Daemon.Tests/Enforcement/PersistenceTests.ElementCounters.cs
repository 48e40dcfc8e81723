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
        using var kernel = new NetNs();
        kernel.Ip("link", "set", "lo", "up");
        var load = kernel.Exec("nft", ["-f", "-"], ElementCounters("127.0.0.1"));
        Assert.True(load.Exit == 0, load.Stderr);

        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path, "--placement", "bpf-only");
        rig.Nft(ElementCounters(EnforcementRig.PeerAddr));
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
        var first = kernel.Exec("nft", ["list", "set", "ip", "t", "s"]).Stdout;
        Assert.Contains("127.0.0.1 counter packets 3 bytes 87", first);
        Assert.Contains("10.9.9.9 counter packets 5 bytes 100", first);
        // `!= @n` matched nothing of n's and `@n` counts its element
        var n = kernel.Exec("nft", ["list", "set", "ip", "t", "n"]).Stdout;
        Assert.Contains("127.0.0.1 counter packets 3 bytes 87", n);
        Assert.Contains("10.9.9.8 counter packets 0 bytes 0", n);

        // an element with a counter is a new slot: bpfilterd compiles the chain again, the others keep their counts
        const string add = "add element ip t s { 10.9.9.10 }\ndelete element ip t v { 12 }\n";
        Assert.True(kernel.Exec("nft", ["-f", "-"], add).Exit == 0);
        rig.Nft(add);
        Round("after adding an element");

        rig.Daemon.Kill();
        rig.Daemon.Restart();
        Round("after a kill and a restart");
        Assert.Equal(0, rig.Daemon.Terminate());
        rig.Daemon.Restart();
        Round("after a clean stop and a restart");
        Assert.Contains("127.0.0.1 counter packets 12 bytes 348", kernel.Exec("nft", ["list", "set", "ip", "t", "s"]).Stdout);
    }
}
