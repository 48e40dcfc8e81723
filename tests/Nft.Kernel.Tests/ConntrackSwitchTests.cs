using Nft.Bytecode;
using Nft.Bytecode.Objects;

namespace Nft.Kernel.Tests;

public class ConntrackSwitchTests
{
    /// <summary>Conntrack entries of the namespace, as the kernel counts them (net->ct.count): no BPF, no nft involved.</summary>
    static int Tracked(TestNetns ns) => int.Parse(ns.Exec("cat", "/proc/sys/net/netfilter/nf_conntrack_count").Trim());

    [Fact]
    public void SwitchesConntrackOnAndOffIdempotently()
    {
        using var net = new VethPair("ct");
        using var socket = net.Firewall.Socket();

        Assert.False(ConntrackSwitch.IsOn(socket));
        Assert.True(net.Ping(2));
        Assert.Equal(0, Tracked(net.Firewall)); // nothing asked for conntrack: the pings were not tracked

        ConntrackSwitch.On(socket);
        ConntrackSwitch.On(socket);
        Assert.True(ConntrackSwitch.IsOn(socket));
        var tables = socket.Dump<Table>(NftMsgType.GetTable, 0, new Table());
        Assert.Single(tables, t => t.Name == ConntrackSwitch.TableName);
        // the chain has no hook: nothing runs per packet
        var chain = Assert.Single(socket.Dump<Chain>(NftMsgType.GetChain, ConntrackSwitch.Family, new Chain()));
        Assert.Null(chain.Hook);

        Assert.True(net.Ping(2));
        Assert.True(Tracked(net.Firewall) >= 1, "the echo flow is tracked once conntrack is on");

        ConntrackSwitch.Off(socket);
        ConntrackSwitch.Off(socket);
        Assert.False(ConntrackSwitch.IsOn(socket));
        Assert.Equal("", net.Firewall.ListRuleset().Trim());
    }
}
