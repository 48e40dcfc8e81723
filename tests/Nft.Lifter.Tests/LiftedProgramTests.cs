using System.Net;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Loader;

namespace Nft.Lifter.Tests;

/// <summary>
/// Kernel-dumped rules of Corpus/packets.nft lifted, compiled and run with BPF_PROG_TEST_RUN on crafted
/// IPv4 packets (netfilter programs see the packet from the network header): verdicts and counters as
/// nf_tables gives them for the same rules (integration/corpus/packets checks those against the kernel).
/// </summary>
public class LiftedProgramTests
{
    const uint NfDrop = 0, NfAccept = 1;

    static SourceTable Only(string family, string table, params string[] comments)
    {
        var t = CorpusLoader.Table("packets", family, table);
        return t with
        {
            Chains = t.Chains.Select(c => c.IsBase ? c with { Rules = c.Rules.Where(r => comments.Contains(r.Comment)).ToList() } : c).ToList(),
        };
    }

    /// <summary>An IPv4 TCP SYN from port 40000, from the network header on.</summary>
    static byte[] Tcp4(string src, string dst, ushort dport)
    {
        IPAddress s = IPAddress.Parse(src), d = IPAddress.Parse(dst);
        return PacketLayers.Ipv4(s, d, PacketLayers.ProtoTcp, PacketLayers.Tcp(s, d, 40000, dport, flags: 0x02, [], window: 0));
    }

    static (LoadedProgram Program, LiftResult Lift) Load(SourceTable t)
    {
        var lift = NftLifter.LiftTable(t);
        var bc = Assert.Single(lift.Ruleset.BaseChains.Items);
        return (LoadedProgram.Load(ProgramCompiler.Compile(lift.Ruleset, [bc], false)), lift);
    }

    [Fact]
    public void VerdictMapThenCounter()
    {
        // ip saddr vmap { 198.19.0.66 : drop, 198.19.0.67 : accept } counter; tcp dport vmap @port-verdicts;
        // udp dport vmap {...}; chain policy accept
        var (p, lift) = Load(Only("ip", "vm", "vmap_counter", "named_vmap", "counter_vmap"));
        using var _ = p;
        Assert.Equal(NfDrop, p.TestRun(Tcp4("198.19.0.66", "198.18.1.1", 22)).ReturnValue);
        Assert.Equal(NfAccept, p.TestRun(Tcp4("198.19.0.67", "198.18.1.1", 23)).ReturnValue);
        Assert.Equal(NfAccept, p.TestRun(Tcp4("198.19.0.1", "198.18.1.1", 22)).ReturnValue);   // miss, then port 22: accept
        Assert.Equal(NfDrop, p.TestRun(Tcp4("198.19.0.1", "198.18.1.1", 23)).ReturnValue);     // miss, then port 23: drop
        Assert.Equal(NfDrop, p.TestRun(Tcp4("198.19.0.26", "198.18.1.1", 25)).ReturnValue);    // jump mail: counter drop
        Assert.Equal(NfAccept, p.TestRun(Tcp4("198.19.0.25", "198.18.1.1", 110)).ReturnValue); // goto mail: accept
        Assert.Equal(NfDrop, p.TestRun(Tcp4("198.19.0.70", "198.18.1.1", 26)).ReturnValue);    // counter ip saddr vmap {.70: drop}
        Assert.Equal(NfAccept, p.TestRun(Tcp4("198.19.0.1", "198.18.1.1", 26)).ReturnValue);  // everything missed: policy
        // the counter after the first vmap has no slot (never counts); the one before the last vmap counts
        // every packet that reached it: the 3 that missed the first map and did not stop at port 22/23/25/110
        var t = CorpusLoader.Table("packets", "ip", "vm");
        ulong Handle(string c) => CorpusLoader.RuleByComment(t, c).Handle!.Value;
        Assert.DoesNotContain(lift.Counters.Keys, k => k.RuleHandle == Handle("vmap_counter"));
        var id = lift.Counters.Single(k => k.Key.RuleHandle == Handle("counter_vmap")).Value;
        Assert.Equal(2UL, p.Counter(id).Packets);
    }

    [Theory]
    [InlineData("198.19.8.77", 1500, true)]
    [InlineData("198.19.8.0", 1000, true)]
    [InlineData("198.19.8.255", 1999, true)]
    [InlineData("198.19.8.77", 2000, false)]
    [InlineData("198.19.8.77", 443, false)]
    [InlineData("198.19.9.1", 22, true)]
    [InlineData("198.19.9.1", 1500, false)]
    [InlineData("198.19.7.1", 1500, false)]
    public void ConcatenatedIntervalSet(string src, int dport, bool member)
    {
        // ip saddr . tcp dport @nets-ports counter drop, nets-ports = { 198.19.8.0/24 . 1000-1999, 198.19.9.0/24 . 22 },
        // then ip daddr . tcp dport @pinholes accept (198.18.2.2 . 80/443), policy drop
        var (p, lift) = Load(Only("inet", "cc", "concat_interval", "concat_pinholes"));
        using var _ = p;
        var t = CorpusLoader.Table("packets", "inet", "cc");
        var handle = CorpusLoader.RuleByComment(t, "concat_interval").Handle!.Value;
        var id = lift.Counters.Single(k => k.Key.RuleHandle == handle).Value;
        var verdict = p.TestRun(Tcp4(src, "198.18.2.2", (ushort)dport)).ReturnValue;
        Assert.Equal(member ? 1UL : 0UL, p.Counter(id).Packets);
        Assert.Equal(!member && dport == 443 ? NfAccept : NfDrop, verdict);
    }
}
