using System.Security.Cryptography;
using static Nft.Engine.Tests.NlTestKit;
using static Nft.Engine.Tests.Transcript;

namespace Nft.Engine.Tests;

/// <summary>
/// The state file's bytes are version 3's as the encoder before 2026-12-05 wrote them (a record writer per record, a
/// message writer per rule, each copied on): encoding into one writer changed the cost, not one byte. The hashes are
/// of the files that encoder wrote for the same sessions, a backend's bytes of a length that is no multiple of 4 among them.
/// </summary>
public class StateBytesTests
{
    [Theory]
    [InlineData("rules.txt", "8B8E1553734B8308B936A8AA78FEB4E7288C16B8A5D51815E538D8BC804A8644")]
    [InlineData("sets.txt", "2AC7453BAACFDDAAAB974375D96CF13C40692B93E6CCFCBB9949DDB5DFAEA883")]
    [InlineData("chains.txt", "A2D75DEA64D1A3C5544C962DFE03AC59250E773C70C74ACBC952B33C37198380")]
    public void TheStateOfACapturedSessionIsTheBytesVersion3Wrote(string file, string sha256)
    {
        var backend = new SlotLedgerBackend();
        var ep = NewEndpoint(new NfTablesOptions
        {
            Requester = p => (p, "nft"), Clock = () => 0, Monotonic = () => 0, RefuseOutOfScope = false, Backend = backend,
        });
        foreach (var (batch, _) in Batches(file)) ep.Process(batch, Port);
        Assert.NotEqual(0, (backend.ExportState()?.Length ?? 0) % 4);
        Assert.Equal(sha256, Convert.ToHexString(SHA256.HashData(ep.ExportState())));
    }
}
