namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A set's `size` changing while its chain's code stays the same, compared with the kernel (6.18): a transaction
/// that flushes the ruleset (or deletes the table) and adds it back with another size, and `add set` naming an
/// existing set with another size (the kernel takes it as a size update, keeping the elements, also below their
/// count). The packet path's `add @s` then breaks the rule once the set holds the new size, and the control plane's
/// `add element` fails with ENFILE, on both sides.
/// </summary>
public sealed class SetSizeChangeTrafficTests
{
    static string Ruleset(int size) => $$"""
        table ip t {
            set fixed {
                type ipv4_addr
                size {{size}}
                flags dynamic
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 add @fixed { ip daddr }
            }
        }
        """;

    /// <summary>Packets to 127.0.0.FIRST.. (one each) through `add @fixed`, then an `add element` both sides must refuse alike.</summary>
    static string Fill(PacketPathSetTrafficTests.Sides s, int first, int count)
    {
        s.Send(12, [.. Enumerable.Range(first, count).Select(i => $"127.0.0.{i}")]);
        var listing = s.SameListing("set ip t fixed");
        var (k, d) = s.Nft("add element ip t fixed { 10.1.1.1 }");
        Assert.True(k.Exit == d.Exit && k.Stderr == d.Stderr, $"kernel {k.Exit}: {k.Stderr}\nbpfilterd {d.Exit}: {d.Stderr}");
        return listing;
    }

    [Theory]
    [InlineData("flush ruleset")]
    [InlineData("delete table ip t")]
    public void ATableAddedBackWithASmallerSetHoldsTheNewSize(string removal)
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset(8));
        s.SameListing();
        s.Apply(removal + "\n" + Ruleset(4));
        var listing = Fill(s, 20, 6);
        Assert.Contains("size 4", listing);
        Assert.DoesNotContain("127.0.0.24", listing); // the fifth packet found the set full
    }

    [Theory]
    [InlineData(8, 4)]
    [InlineData(4, 8)]
    public void AddSetWithAnotherSizeUpdatesTheSizeAndKeepsTheElements(int before, int after)
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset(before));
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        s.SameListing();
        s.Apply($"add set ip t fixed {{ type ipv4_addr; size {after}; flags dynamic; }}");
        var listing = Fill(s, 20, 8);
        Assert.Contains($"size {after}", listing);
        Assert.Contains("127.0.0.4", listing);
    }

    /// <summary>
    /// Below the elements it holds, the kernel keeps them and its packet path then adds past the size (nft_dynset stops
    /// only at a count equal to it): no BPF map of that size holds them, so bpfilterd refuses it, naming the set.
    /// </summary>
    [Fact]
    public void AddSetWithASizeBelowThePacketPathsElementsIsRefusedNamingTheSet()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset(8));
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        var (k, d) = s.Nft("add set ip t fixed { type ipv4_addr; size 2; flags dynamic; }");
        Assert.Equal(0, k.Exit);
        Assert.NotEqual(0, d.Exit);
        Assert.Contains("Operation not supported", d.Stderr);
        Assert.True(s.Rig.Daemon.Log.Contains("set 'ip t/fixed': size 2 is below the 3 elements it holds"), s.Rig.Daemon.Log);
        // nothing of it kept: the set still takes packets up to its size 8
        s.Send(12, "127.0.0.5");
        Assert.Contains("size 8", s.Rig.Daemon.Bfnft(["list", "set", "ip", "t", "fixed"]).Stdout);
        Assert.Contains("127.0.0.5", s.Rig.Daemon.Bfnft(["list", "set", "ip", "t", "fixed"]).Stdout);
    }
}
