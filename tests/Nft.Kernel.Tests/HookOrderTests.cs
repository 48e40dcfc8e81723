using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using static Bpfilter.Backend.Bpf.Register;

namespace Nft.Kernel.Tests;

/// <summary>
/// Which runs first at one netfilter hook: a BPF_NETFILTER link or a kernel nf_tables base chain?
/// The link's program drops everything; the chain (ip filter input, built in code) only counts.
/// If the chain counted the pings, it ran before the link.
/// </summary>
public class HookOrderTests
{
    const int NfprotoIpv4 = 2, HookInput = 1;

    static BpfProgram DropAll() =>
        BpfProgram.Load(BpfProgType.Netfilter, "nk_drop", Linker.Link(new Assembler().Emit(Asm.Mov64Imm(R0, 0), Asm.Exit()).Build()),
            BpfAttachType.Netfilter); // NF_DROP

    static SourceTable CountingChain(int priority) => new(
        new Table { Family = NfprotoIpv4, Name = "order" },
        [new SourceChain(
            new Chain { Family = NfprotoIpv4, Table = "order", Name = "input", Hook = new ChainHook(HookInput, priority), Type = "filter", Policy = 1 },
            [new Rule { Family = NfprotoIpv4, Table = "order", Chain = "input", Handle = 1, Expressions = [new CounterExpr()] }])],
        []);

    static BpfLink Attach(VethPair net, BpfProgram prog, int priority) =>
        Netns.Run(net.Firewall.Path, () => BpfLink.AttachNetfilter(prog, NfprotoIpv4, HookInput, priority));

    /// <summary>Places the chain, optionally attaches the link before or after it, pings 3 times, returns what the chain counted.</summary>
    static ulong Measure(int linkPriority, int chainPriority, bool linkFirst)
    {
        using var net = new VethPair("ord");
        using var socket = net.Firewall.Socket();
        using var prog = DropAll();
        var placement = new KernelPlacement(socket);
        BpfLink? link = null;
        try
        {
            if (linkFirst) link = Attach(net, prog, linkPriority);
            placement.Prepare([CountingChain(chainPriority)]);
            placement.Commit();
            if (!linkFirst) link = Attach(net, prog, linkPriority);
            Assert.False(net.Ping(3)); // the link drops them either way
            return placement.ReadCounters().Rule(NfprotoIpv4, "order", 1, 0)!.Packets;
        }
        finally { link?.Dispose(); }
    }

    [Fact]
    public void ALinkAtALowerPriorityRunsBeforeTheChain()
    {
        Assert.Equal(0ul, Measure(linkPriority: -10, chainPriority: 0, linkFirst: true));
        Assert.Equal(0ul, Measure(linkPriority: -10, chainPriority: 0, linkFirst: false));
    }

    [Fact]
    public void ALinkAtAHigherPriorityRunsAfterTheChain()
    {
        Assert.Equal(3ul, Measure(linkPriority: 10, chainPriority: 0, linkFirst: true));
        Assert.Equal(3ul, Measure(linkPriority: 10, chainPriority: 0, linkFirst: false));
    }

    /// <remarks>
    /// nf_hook_entries_grow inserts a new hook before the first one whose priority is not lower:
    /// among equals, the newest runs first. So a chain (re)registered at a link's priority jumps
    /// ahead of the link.
    /// </remarks>
    [Fact]
    public void AtEqualPriorityAChainAddedAfterTheLinkRunsBeforeIt()
    {
        Assert.Equal(3ul, Measure(linkPriority: 0, chainPriority: 0, linkFirst: true));
    }

    [Fact]
    public void ALinkCannotTakeThePriorityOfAnExistingChain()
    {
        var e = Assert.Throws<BpfException>(() => Measure(linkPriority: 0, chainPriority: 0, linkFirst: false));
        Assert.Equal(16, e.Errno); // EBUSY
    }
}
