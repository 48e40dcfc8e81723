namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A table deleted and added back in one transaction (`flush ruleset` or `delete table` and the same table in one file,
/// the usual way to reapply a ruleset), compared with the kernel (6.18): its rules and counter objects are new ones,
/// counting from zero or from what the file gives them, though the new table hands out the same rule handles again.
/// </summary>
public sealed class TableRecreateCounterTrafficTests
{
    static string Ruleset(string preset) => $$"""
        table ip t {
            counter named {
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 12 counter{{preset}}
                udp dport 12 counter name "named"
                udp dport 12 counter accept
            }
        }
        """;

    [Theory]
    [InlineData("flush ruleset", "")]
    [InlineData("delete table ip t", "")]
    [InlineData("flush ruleset", " packets 5 bytes 500")]
    public void RulesOfATableAddedBackInTheSameTransactionCountFromTheirOwnStart(string removal, string preset)
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset(""));
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.4");
        Assert.Contains("packets 3", s.SameListing());
        s.Apply(removal + "\n" + Ruleset(preset));
        Assert.DoesNotContain("packets 3", s.SameListing());
        s.Send(12, "127.0.0.2");
        Assert.Contains("packets 1", s.SameListing());
    }

    /// <summary>The same table added again without removal keeps its rules, which keep counting.</summary>
    [Fact]
    public void TheTableAddedAgainWithoutRemovalKeepsItsCounts()
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply(Ruleset(""));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        s.Apply("table ip t {\n}\n");
        s.Send(12, "127.0.0.2");
        Assert.Contains("packets 3", s.SameListing());
    }
}
