namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// `add set` naming an existing set with another `timeout` (kernel 6.18, nft_trans_set_update): the set's default
/// timeout and gc-interval become what was sent at commit. Elements keep their own timeout and expiry (listed with
/// `timeout T` where it now differs from the set's); the packet path's `add @s` gives new elements the new default and
/// `update @s` renews a live element to it (keeping the element's own timeout); `add element` gives the new default
/// too. Compared with the kernel, the chain compiled to BPF.
/// </summary>
public sealed class SetTimeoutUpdateTrafficTests
{
    static readonly string Ruleset = PacketPathSetTrafficTests.OutputTable("d", "type ipv4_addr; flags dynamic,timeout; timeout 10m;", "out",
        "udp dport 12 add @d { ip daddr }", "udp dport 13 update @d { ip daddr }");

    [Fact]
    public void NewElementsTakeTheUpdatedDefaultAndOldOnesKeepTheirs()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Apply("add element ip t d { 10.1.1.1, 10.1.1.2 timeout 20m }");
        s.SameListing();
        s.Apply("add set ip t d { type ipv4_addr; flags dynamic,timeout; timeout 1h; gc-interval 5s; }");
        s.Send(12, "127.0.0.2", "127.0.0.4");   // 127.0.0.2 is live: add keeps its expiry; 127.0.0.4 is new
        s.Send(13, "127.0.0.3", "127.0.0.5");   // update renews 127.0.0.3 to the new default, 127.0.0.5 is new
        s.Apply("add element ip t d { 10.1.1.3 }");
        s.SameListingWith("timeout 1h", "gc-interval 5s", "127.0.0.2 timeout 10m expires 9m", "127.0.0.3 timeout 10m expires 59m",
            "127.0.0.4 expires 59m", "10.1.1.3 expires 59m");
    }

    /// <summary>
    /// An update sending no timeout takes the set's default away: the rule's new elements never expire, and `update` of
    /// a live element renews it to now + 0 (it is gone at once, in the kernel as in BPF).
    /// </summary>
    [Fact]
    public void AnUpdateWithoutATimeoutTakesTheDefaultAway()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset);
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Apply("add set ip t d { type ipv4_addr; flags dynamic,timeout; }");
        s.Send(12, "127.0.0.4");
        s.Send(13, "127.0.0.3", "127.0.0.5");
        s.Apply("add element ip t d { 10.1.1.3 }");
        var listing = s.SameListing();
        Assert.DoesNotContain("127.0.0.3", listing);
        Assert.Contains("127.0.0.2 timeout 10m expires 9m", listing);
        foreach (var permanent in new[] { "127.0.0.4", "127.0.0.5", "10.1.1.3" })
        {
            Assert.Matches($@"{permanent.Replace(".", @"\.")}[,\s}}]", listing);
            Assert.DoesNotContain(permanent + " expires", listing);
        }
    }
}
