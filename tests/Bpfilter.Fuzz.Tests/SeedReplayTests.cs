using Bpfilter.Fuzz;
using Nft.Bytecode;
using Nft.Netlink;

namespace Bpfilter.Fuzz.Tests;

/// <summary>Every seed, through both targets: the starting corpus itself must not crash anything.</summary>
public class SeedReplayTests
{
    [Fact]
    public void SeedsCoverBothTargets()
    {
        Assert.True(FuzzInputs.Seeds.Count(s => s.Target == "decoder") > 1000);
        Assert.True(FuzzInputs.Seeds.Count(s => s.Target == "engine") > 50);
    }

    [Theory]
    [InlineData("decoder")]
    [InlineData("engine")]
    public void EverySeedPassesThroughTarget(string target)
    {
        var t = FuzzTargets.Named(target);
        var crashes = FuzzInputs.Seeds
            .Select(s => (s.Name, Problem: Replay.Run(t, s.Bytes)))
            .Where(r => r.Problem != null)
            .Select(r => $"{r.Name}: {r.Problem}")
            .ToList();
        Assert.True(crashes.Count == 0, $"{crashes.Count} seeds crash {target}:\n" + string.Join("\n", crashes.Take(5)));
    }

    /// <summary>
    /// A transcript's engine seed really drives the engine: chains-003 replays "add table inet f" and three
    /// "add chain" commands the kernel accepted (transcript chains.txt); nothing is refused and a chain
    /// dump afterwards lists the three chains.
    /// </summary>
    [Fact]
    public void EngineSeedBuildsStateTheEngineAccepts()
    {
        var seed = FuzzInputs.Seeds.Single(s => s.Target == "engine" && s.Name == "chains-003");
        var process = EngineUnderTest.Create(refuseOutOfScope: seed.Bytes[0] == 0);
        var replies = RequestSequence.Split(seed.Bytes.AsSpan(1)).SelectMany(r => process(r, 4242)).ToList();
        Assert.DoesNotContain(replies, d => BitConverter.ToUInt16(d, 4) == NlMsgType.Error && BitConverter.ToInt32(d, 16) != 0);

        var w = new NetlinkWriter();
        w.EndMessage(w.BeginNfMessage(Nfnl.SubsysNftables, (byte)NftMsgType.GetChain, NlmFlags.Request | NlmFlags.Dump, 99, 0, 0, 0));
        int chains = 0;
        foreach (var datagram in process(w.ToArray(), 4242))
        {
            var r = new NetlinkMessageReader(datagram);
            while (r.TryRead(out var m))
                if (m.IsNfTables && Nfnl.Msg(m.Header.Type) == (byte)NftMsgType.NewChain) chains++;
        }
        Assert.Equal(3, chains);
    }
}
