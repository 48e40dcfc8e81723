using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Tests.Libbpf;

/// <summary>
/// Filling a double-buffered map's copies from one packing of the entries: each copy holds exactly what filling it
/// alone holds, across several update batches (more entries than one batch), for an array, a hash map and an LPM trie
/// (no batch update: one by one); maps that differ are refused before anything is written.
/// </summary>
public class UpdateManyTests
{
    [Theory]
    [InlineData(BpfMapType.Array, 150_000)]
    [InlineData(BpfMapType.Hash, 70_000)]
    [InlineData(BpfMapType.LpmTrie, 300)]
    public void EveryMapHoldsWhatFillingItAloneHolds(BpfMapType type, int n)
    {
        var random = new Random(n);
        var keySize = type == BpfMapType.LpmTrie ? 8 : 4;
        var entries = new List<(byte[] Key, byte[] Value)>();
        for (var i = 0; i < n; i++)
        {
            var key = new byte[keySize];
            if (type == BpfMapType.LpmTrie) { key[0] = 32; BitConverter.TryWriteBytes(key.AsSpan(4), i * 7919); }
            else BitConverter.TryWriteBytes(key, i);
            var value = new byte[24];
            random.NextBytes(value);
            entries.Add((key, value));
        }
        using var alone = BpfMap.Create(type, "um_alone", keySize, 24, n);
        using var a = BpfMap.Create(type, "um_a", keySize, 24, n);
        using var b = BpfMap.Create(type, "um_b", keySize, 24, n);
        alone.UpdateMany(entries);
        BpfMap.UpdateMany([a, b], entries);
        Span<byte> want = stackalloc byte[24], got = stackalloc byte[24];
        foreach (var (key, value) in entries)
        {
            Assert.True(alone.TryLookup(key, want));
            Assert.Equal(value, want.ToArray());
            foreach (var m in new[] { a, b })
            {
                Assert.True(m.TryLookup(key, got));
                Assert.Equal(value, got.ToArray());
            }
        }
    }

    [Fact]
    public void MapsOfOtherShapesAreRefused()
    {
        using var a = BpfMap.Create(BpfMapType.Array, "um_a", 4, 8, 4);
        using var b = BpfMap.Create(BpfMapType.Array, "um_b", 4, 16, 4);
        var e = Assert.Throws<ArgumentException>(() => BpfMap.UpdateMany([a, b], [(new byte[4], new byte[8])]));
        Assert.Contains("alike", e.Message);
        Span<byte> got = stackalloc byte[8];
        got.Fill(0xff);
        Assert.True(a.TryLookup(new byte[4], got));
        Assert.Equal(new byte[8], got.ToArray());
    }
}
