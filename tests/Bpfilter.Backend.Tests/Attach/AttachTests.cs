using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>Programs attached for real (XDP, tcx, netfilter links) on a veth pair between two namespaces we create.</summary>
[Collection("attach")]
public class AttachTests
{
    private const int Blocked = 5555, Open = 5556, Payload = 32;
    private const ulong IpBytes = 20 + 8 + Payload; // nf_tables counts from the network header

    private static Rule DropBlockedCounted => Counted(1, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(Blocked)));

    private static LoadedProgram Compile(Hook hook, params Rule[] rules)
    {
        var rs = Ruleset(hook, Verdict.Accept, rules);
        return LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items));
    }

    [Fact]
    public void XdpLinkDropsAndUpdateSwapsAtomically()
    {
        using var veth = new VethPair();
        Assert.True(veth.SendUdp(Blocked, Payload));
        using var drop = Compile(new XdpIngress(VethPair.ServerDevice), DropBlockedCounted);
        using var pass = Compile(new XdpIngress(VethPair.ServerDevice));
        var link = VethPair.InNamespace(veth.Server, () =>
            BpfLink.AttachXdp(drop.Program, BpfLink.IfIndex(VethPair.ServerDevice)));
        using (link)
        {
            Assert.False(veth.SendUdp(Blocked, Payload));
            Assert.True(veth.SendUdp(Open, Payload));
            Assert.Equal((1UL, IpBytes), drop.Counter(1));
            link.Update(pass.Program);
            Assert.True(veth.SendUdp(Blocked, Payload));
        }
        Assert.True(veth.SendUdp(Blocked, Payload));
    }

    [Fact]
    public void TcxIngressLinkDrops()
    {
        using var veth = new VethPair();
        using var drop = Compile(new TcIngress(VethPair.ServerDevice), DropBlockedCounted);
        using (VethPair.InNamespace(veth.Server, () =>
                   BpfLink.AttachTcx(drop.Program, BpfLink.IfIndex(VethPair.ServerDevice), ingress: true)))
        {
            Assert.False(veth.SendUdp(Blocked, Payload));
            Assert.True(veth.SendUdp(Open, Payload));
            Assert.Equal((1UL, IpBytes), drop.Counter(1));
        }
        Assert.True(veth.SendUdp(Blocked, Payload));
    }

    [Fact]
    public void TcxEgressLinkDrops()
    {
        using var veth = new VethPair();
        using var drop = Compile(new TcEgress(VethPair.ClientDevice), DropBlockedCounted);
        using (VethPair.InNamespace(veth.Client, () =>
                   BpfLink.AttachTcx(drop.Program, BpfLink.IfIndex(VethPair.ClientDevice), ingress: false)))
        {
            Assert.False(veth.SendUdp(Blocked, Payload));
            Assert.True(veth.SendUdp(Open, Payload));
            Assert.Equal((1UL, 14 + IpBytes), drop.Counter(1)); // egress: skb->len includes the Ethernet header
        }
    }

    [Fact]
    public void NetfilterLinkDropsAtInput()
    {
        using var veth = new VethPair();
        using var drop = Compile(new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0),
            Counted(1, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16(Blocked)), Matcher.Eq(Fields.Ip.Saddr, V4(veth.ClientAddress)),
                Matcher.Eq(Fields.IifName, Value.IfName(VethPair.ServerDevice))));
        using (VethPair.InNamespace(veth.Server, () => BpfLink.AttachNetfilter(drop.Program, 2, 1, 0)))
        {
            Assert.False(veth.SendUdp(Blocked, Payload));
            Assert.True(veth.SendUdp(Open, Payload));
            Assert.Equal((1UL, IpBytes), drop.Counter(1));
        }
        Assert.True(veth.SendUdp(Blocked, Payload));
    }
}
