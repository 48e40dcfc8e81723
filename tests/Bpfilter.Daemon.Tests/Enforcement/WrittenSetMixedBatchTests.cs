namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A set the packet path writes (`update @s`) whose writer's attach point does not change in a batch that changes the
/// rules of another attach point and the set's elements: the writer keeps its program (its source holds the set
/// without elements), and the batch's `add element` / `delete element` must still reach the set's map, as in the
/// kernel. Compared with the kernel's nf_tables on the same batches and packets (`--placement bpf-only`).
/// </summary>
public sealed class WrittenSetMixedBatchTests
{
    /// <param name="lookup">
    /// Where a rule reads the set: nowhere (only the writer references it), in the chain whose rules the batches
    /// change, or in a chain of a third attach point the batches do not change.
    /// </param>
    [Theory]
    [InlineData("none")]
    [InlineData("changed")]
    [InlineData("other")]
    public void ElementChangesOfABatchThatChangesAnotherAttachPointsRulesReachTheWritersMap(string lookup)
    {
        using var s = new PacketPathSetTrafficTests.Sides();
        s.Apply($$"""
            table ip t {
                set s {
                    type ipv4_addr
                    flags dynamic,timeout
                    timeout 1m
                }
                chain out {
                    type filter hook output priority 0; policy accept;
                    udp dport 9 update @s { ip daddr }
                    udp dport 11 update @s { ip daddr timeout 2m }
                }
                chain in2 {
                    type filter hook input priority 0; policy accept;
                    udp dport 7 {{(lookup == "changed" ? "ip daddr @s " : "")}}counter
                }
                {{(lookup == "other" ? "chain pre {\n type filter hook prerouting priority 0; policy accept;\n udp dport 7 ip daddr @s counter\n }" : "")}}
            }
            """);
        s.Send(9, "127.0.0.2");
        var before = s.Rig.ProgramIds();

        // rules of in2 and elements of @s in one transaction; out's rules do not change
        s.Apply("add rule ip t in2 udp dport 8 counter\nadd element ip t s { 127.0.0.8 timeout 10s, 127.0.0.9 }");
        var listing = s.SameListing("set ip t s");
        Assert.Contains("127.0.0.8 timeout 10s expires", listing);
        Assert.Contains("127.0.0.9", listing);
        Assert.Contains("127.0.0.2", listing);
        var after = s.Rig.ProgramIds();
        Assert.NotEqual(before.Values.Order(), after.Values.Order());

        // the packet path finds the control-plane element: update renews its expiration, its own timeout stays
        s.Send(11, "127.0.0.8");
        Assert.Contains("127.0.0.8 timeout 10s expires 1m", s.SameListing("set ip t s"));

        // deleting a control-plane element and one the packet path added, with another rule change of in2
        s.Apply("add rule ip t in2 udp dport 6 counter\ndelete element ip t s { 127.0.0.9, 127.0.0.2 }");
        listing = s.SameListing("set ip t s");
        Assert.DoesNotContain("127.0.0.9", listing);
        Assert.DoesNotContain("127.0.0.2", listing);
        Assert.Contains("127.0.0.8", listing);

        // the packet path adds a deleted element anew, with the set's timeout
        s.Send(9, "127.0.0.9");
        Assert.Contains("127.0.0.9 expires", s.SameListing("set ip t s"));
        s.SameListing();
    }
}
