using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Kernel.Tests;

/// <summary>
/// The kernel's NFT_MSG_TRACE for placed chains, read from NFNLGRP_NFTRACE and translated to the caller's
/// rule handles: a ping traced from prerouting on comes out with the caller's handles, and a table the
/// placement does not hold leaves nothing.
/// </summary>
public class TraceTests
{
    const string Traced = """
        table inet t {
            chain pre {
                type filter hook prerouting priority 0; policy accept;
                icmp type echo-request meta nftrace set 1
            }
            chain in {
                type filter hook input priority 0; policy accept;
                tcp dport 22 drop
                icmp type echo-request counter accept
            }
        }
        """;

    const uint Policy = 1, Rule = 3; // enum nft_trace_types

    record Step(string Table, string Chain, uint Type, ulong? Handle);

    [Fact]
    public void TracesOfPlacedChainsCarryTheCallersRuleHandles()
    {
        using var pair = new VethPair("trk");
        using var socket = pair.Firewall.Socket();
        var (desired, placement) = Place(socket);
        // a table written around the placement: its traces are not the caller's
        pair.Firewall.Nft("add table ip stray { chain c { type filter hook input priority 5; policy accept; counter; }; }");

        using var trace = Netns.Run(pair.Firewall.Path, KernelTraceSocket.Open);
        trace.Join(true);
        var raw = new List<Step>();
        var translated = new List<Step>();
        using var stop = new CancellationTokenSource();
        var reader = new Thread(() => trace.Run(d =>
        {
            lock (raw)
            {
                raw.AddRange(Steps(d));
                foreach (var m in KernelTrace.ForCaller(d, placement.CallerRuleHandle)) translated.AddRange(Steps(m));
            }
        }, () => throw new InvalidOperationException("traces lost"), stop.Token));
        reader.Start();
        Assert.True(pair.Ping(1));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            lock (raw) if (raw.Any(s => s.Table == "stray" && s.Type == Policy)) break; // the packet's last step
            Thread.Sleep(50);
        }
        stop.Cancel();
        reader.Join();

        ulong Handle(string chain, int index) => Rulesets.Rule(desired, "t", chain, index).Handle!.Value;
        Assert.Equal(
        [
            new Step("t", "pre", Rule, Handle("pre", 0)),
            new Step("t", "pre", Rule, null), // the end of the rules (the kernel's own step, relayed as it is)
            new Step("t", "pre", Policy, null),
            new Step("t", "in", Rule, Handle("in", 1)),
        ], translated);
        Assert.Contains(raw, s => s.Table == "stray");
        Assert.DoesNotContain(translated, s => s.Table == "stray");
        Assert.Contains(raw, s => s.Table == "t" && s.Handle == placement.KernelRuleHandle(NfProto.Inet, "t", Handle("in", 1)));
    }

    [Fact]
    public void TracesOfRulesAndTablesACommitRemovedStillMapRightAfterIt()
    {
        using var kernel = new TestNetns("trk");
        using var socket = kernel.Socket();
        var (desired, placement) = Place(socket);
        var drop = Rulesets.Rule(desired, "t", "in", 0).Handle!.Value;
        var kernelDrop = placement.KernelRuleHandle(NfProto.Inet, "t", drop)!.Value;
        Assert.Equal(drop, placement.CallerRuleHandle(NfProto.Inet, "t", kernelDrop));
        Assert.Equal(0UL, placement.CallerRuleHandle(NfProto.Inet, "t", null));
        Assert.Null(placement.CallerRuleHandle(NfProto.Ipv4, "t", null)); // not a table of the placement
        Assert.False(placement.WaitWhileCommitting(TimeSpan.FromSeconds(5))); // no commit under way: at once

        // the drop rule goes: a trace the kernel sent before, read after the commit, still names it (the map before
        // the last change); the kernel no longer holds it (a chain moved back to the kernel places it anew)
        var without = desired.Select(t => t with
        {
            Chains = t.Chains.Select(c => c with { Rules = c.Rules.Where(r => r.Handle != drop).ToList() }).ToList(),
        }).ToList();
        var accept = Rulesets.Rule(without, "t", "in", 0).Handle!.Value;
        var kernelAccept = placement.KernelRuleHandle(NfProto.Inet, "t", accept)!.Value;
        placement.Prepare(without);
        placement.Commit();
        Assert.Equal(drop, placement.CallerRuleHandle(NfProto.Inet, "t", kernelDrop));
        Assert.Null(placement.KernelRuleHandle(NfProto.Inet, "t", drop));
        // the table goes: its traces still map right after, and no longer one change later
        placement.Prepare([]);
        placement.Commit();
        Assert.Equal(accept, placement.CallerRuleHandle(NfProto.Inet, "t", kernelAccept));
        Assert.Null(placement.CallerRuleHandle(NfProto.Inet, "t", kernelDrop)); // deleted two changes ago
        placement.Prepare([]);
        placement.Commit();
        Assert.Null(placement.CallerRuleHandle(NfProto.Inet, "t", kernelAccept));
        Assert.Null(placement.CallerRuleHandle(NfProto.Inet, "t", null));
    }

    /// <summary>Places <see cref="Traced"/>, as an emulation holds it (its own rule handles), through <paramref name="socket"/>.</summary>
    static (IReadOnlyList<Nft.Bytecode.Objects.SourceTable> Desired, KernelPlacement Placement) Place(KernelNfTablesSocket socket)
    {
        using var emulation = new TestNetns("tre");
        emulation.NftFile(Traced);
        var desired = Rulesets.ShiftHandles(Rulesets.Read(emulation), 1000);
        var placement = new KernelPlacement(socket);
        placement.Prepare(desired);
        placement.Commit();
        return (desired, placement);
    }

    static List<Step> Steps(ReadOnlySpan<byte> datagram)
    {
        var steps = new List<Step>();
        var r = new NetlinkMessageReader(datagram);
        while (r.TryRead(out var m))
        {
            if (m.Header.Type != Nfnl.Type(Nfnl.SubsysNftables, (byte)NftMsgType.Trace)) continue;
            var a = m.AttributeTable(16);
            steps.Add(new Step(a[KernelTrace.NFTA_TRACE_TABLE].String(), a[KernelTrace.NFTA_TRACE_CHAIN].String(),
                a[KernelTrace.NFTA_TRACE_TYPE].U32Be(),
                a.TryGet(KernelTrace.NFTA_TRACE_RULE_HANDLE, out var h) ? h.U64Be() : null));
        }
        return steps;
    }
}
