using System.Buffers.Binary;
using System.Security.Cryptography;
using static Nft.Engine.Tests.NlTestKit;
using static Nft.Engine.Tests.Transcript;

namespace Nft.Engine.Tests;

/// <summary>
/// The state file's bytes are version 3's as the encoder before 2026-12-05 wrote them (a record writer per record, a
/// message writer per rule, each copied on): encoding into one writer changed the cost, not one byte. The hashes are
/// of the files that encoder wrote for the same sessions, a backend's bytes of a length that is no multiple of 4 among them.
/// A version 2 file (no clock offset in the namespace record) is still read.
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
        var ep = WithBackend(backend);
        foreach (var (batch, _) in Batches(file)) ep.Process(batch, Port);
        Assert.NotEqual(0, (backend.ExportState()?.Length ?? 0) % 4);
        Assert.Equal(sha256, Convert.ToHexString(SHA256.HashData(ep.ExportState())));
    }

    static NfTablesEndpoint WithBackend(SlotLedgerBackend backend) => NewEndpoint(new NfTablesOptions
    {
        Requester = p => (p, "nft"), Clock = () => 0, Monotonic = () => 0, RefuseOutOfScope = false, Backend = backend,
    });

    [Fact]
    public void AVersion2FileIsReadAsTheVersion3FileItBecame()
    {
        var ep = WithBackend(new SlotLedgerBackend());
        foreach (var (batch, _) in Batches("rules.txt")) ep.Process(batch, Port);
        var v3 = ep.ExportState();
        // the namespace record opens the payload (28-byte header): generation (8 bytes as an attribute), table handle and
        // element sequence (12 each), then the clock offset (12) that version 3 added; version 2 ended before it
        const int header = 28, ns = header + 8, offset = ns + 8 + 12 + 12;
        Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(v3.AsSpan(offset + 2)));
        byte[] v2 = [.. v3.AsSpan(0, offset), .. v3.AsSpan(offset + 12)];
        BinaryPrimitives.WriteUInt32LittleEndian(v2.AsSpan(8), 2);
        BinaryPrimitives.WriteUInt64LittleEndian(v2.AsSpan(12), (ulong)(v2.Length - header));
        BinaryPrimitives.WriteUInt32LittleEndian(v2.AsSpan(header + 4), BinaryPrimitives.ReadUInt32LittleEndian(v3.AsSpan(header + 4)) - 12);
        BinaryPrimitives.WriteUInt64LittleEndian(v2.AsSpan(20), StateCodec.Fnv1a(v2.AsSpan(header)));

        var copy = WithBackend(new SlotLedgerBackend());
        copy.ImportState(v2);
        Assert.Equal(ep.Generation, copy.Generation);
        Assert.Equal(v3, copy.ExportState());
    }
}
