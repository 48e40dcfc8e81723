using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>The XDP and tc ingress hooks of the veth pair's server device, where tests run two programs sharing one set.</summary>
static class ServerHooks
{
    static readonly XdpIngress Xdp = new(VethPair.ServerDevice);
    static readonly TcIngress Tc = new(VethPair.ServerDevice);

    /// <summary>Chain `t/edge` of <paramref name="xdp"/> at XDP and chain `t/tc` of <paramref name="tc"/> at tc ingress (policy accept both), with <paramref name="set"/>.</summary>
    public static Ruleset XdpAndTc(ValueList<Rule> xdp, ValueList<Rule> tc, Backend.Ir.Set set) =>
        new(ValueList.Of(new BaseChain("t/edge", Xdp, 0, Verdict.Accept, xdp), new BaseChain("t/tc", Tc, 0, Verdict.Accept, tc)),
            ValueList<Chain>.Empty, ValueList.Of(set));
}
