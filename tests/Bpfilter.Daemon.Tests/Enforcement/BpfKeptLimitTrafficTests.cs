namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A limit object BPF holds while no rule names it any more, compared with the kernel (6.18) with real traffic. nf_tables
/// keeps the object's bucket while its table holds it, and a rule naming it again goes on from there. Before (issue 8, BPF
/// side), BPF gave up the object's slot with the last rule naming it and a rule naming it again started full: bpfilterd let
/// 13:3 through where the kernel let 13:0. The limit is `rate 1/minute burst 3 packets` (nothing refills within a test).
/// </summary>
public sealed class BpfKeptLimitTrafficTests
{
    const string Ruleset = """
        table netdev t {
            limit l { rate 1/minute burst 3 packets }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 limit name "l" counter comment "drains"
            }
        }
        """;

    const string Names = "add rule netdev t in udp dport 13 limit name \"l\" counter";

    static string Accepted(PacketPathSetTrafficTests.Sides s) => KernelKeptLimitTrafficTests.Accepted(s);

    static PacketPathSetTrafficTests.Sides Drained(string? pins = null)
    {
        var s = new PacketPathSetTrafficTests.Sides("auto", pins);
        try
        {
            s.Apply(Ruleset);
            Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
            s.Send(12, Enumerable.Repeat("127.0.0.2", 5).ToArray());
            Assert.Equal("kernel 12:3 | bpfilterd 12:3", Accepted(s));
            s.Apply($"delete rule netdev t in handle {PlacementMoveCounterTrafficTests.Handle(s, "comment \"drains\"")}");
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    [Fact]
    public void ALimitObjectNoRuleNamesKeepsItsBucketInBpf()
    {
        using var s = Drained();
        s.Apply(Names);
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Send(13, Enumerable.Repeat("127.0.0.2", 3).ToArray());
        Assert.Equal("kernel 13:0 | bpfilterd 13:0", Accepted(s));
    }

    /// <summary>Across a clean stop and a SIGKILL of bpfilterd: the slot and its bucket in the pinned limits map are kept.</summary>
    [Fact]
    public void ALimitObjectNoRuleNamesKeepsItsBucketInBpfAcrossRestarts()
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = Drained(pins.Path);
        s.AcrossRestarts(() => { }, () => { });
        s.Apply(Names);
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Send(13, Enumerable.Repeat("127.0.0.2", 3).ToArray());
        Assert.Equal("kernel 13:0 | bpfilterd 13:0", Accepted(s));
    }

    /// <summary>The user deletes the limit no rule names (alone, or with the same batch adding it again): one made again starts full on both sides.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ALimitObjectTheUserRenewsStartsFull(bool oneBatch)
    {
        using var s = Drained();
        const string Add = "add limit netdev t l { rate 1/minute burst 3 packets }";
        if (!oneBatch) s.Apply("delete limit netdev t l");
        s.Apply(oneBatch ? $"delete limit netdev t l\n{Add}" : Add);
        s.Apply(Names);
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        s.Send(13, Enumerable.Repeat("127.0.0.2", 5).ToArray());
        Assert.Equal("kernel 13:3 | bpfilterd 13:3", Accepted(s));
    }
}
