using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Enforcement;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

[Collection("attach")]
public class EnforcerTests
{
    private static Ruleset Rules(params (Hook Hook, ushort DropPort, ulong Counter)[] chains) => new(
        chains.Select((c, i) => new BaseChain($"t/c{i}", c.Hook, 0, Verdict.Accept,
            ValueList.Of(Counted(c.Counter, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(c.DropPort)))))).ToValueList(),
        ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);

    [Fact]
    public void ApplySwapsNetfilterAndXdpProgramsAndDetachesRemovedHooks()
    {
        using var veth = new VethPair();
        var input = new NetfilterHook(NfFamily.Inet, NfHookPoint.Input, 0);
        var xdp = new XdpIngress(VethPair.ServerDevice);
        using var enforcer = new Enforcer();

        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(Rules((input, 6001, 1))); return 0; });
        Assert.Equal(2, enforcer.AttachPoints.Count); // inet: an IPv4 and an IPv6 program
        Assert.False(veth.SendUdp(6001));
        Assert.True(veth.SendUdp(6002));
        Assert.Equal(1UL, enforcer.Counter(1).Packets);

        // New ruleset: the netfilter dispatcher switches programs, a new XDP attach point appears.
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(Rules((input, 6002, 2), (xdp, 6003, 3))); return 0; });
        Assert.True(veth.SendUdp(6001));
        Assert.False(veth.SendUdp(6002));
        Assert.False(veth.SendUdp(6003));
        Assert.Equal((1UL, 1UL), (enforcer.Counter(2).Packets, enforcer.Counter(3).Packets));

        // XDP link updated in place.
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(Rules((xdp, 6004, 4))); return 0; });
        Assert.Single(enforcer.AttachPoints);
        Assert.True(veth.SendUdp(6002));
        Assert.True(veth.SendUdp(6003));
        Assert.False(veth.SendUdp(6004));

        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(Backend.Ir.Ruleset.Empty); return 0; });
        Assert.Empty(enforcer.AttachPoints);
        Assert.True(veth.SendUdp(6004));
    }

    [Fact]
    public void FailedApplyKeepsThePreviousRuleset()
    {
        using var veth = new VethPair();
        var xdp = new XdpIngress(VethPair.ServerDevice);
        using var enforcer = new Enforcer();
        VethPair.InNamespace(veth.Server, () => { enforcer.Apply(Rules((xdp, 6101, 1))); return 0; });
        Assert.False(veth.SendUdp(6101));
        // The second attach point names a device that does not exist: nothing may change.
        var ex = Assert.Throws<AggregateException>(() => VethPair.InNamespace(veth.Server, () =>
        {
            enforcer.Apply(Rules((xdp, 6102, 2), (new XdpIngress("h5-nodev"), 6103, 3)));
            return 0;
        }));
        Assert.IsType<BpfException>(ex.InnerException);
        Assert.False(veth.SendUdp(6101));
        Assert.True(veth.SendUdp(6102));
    }
}
