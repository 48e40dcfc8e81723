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

    /// <summary>
    /// Issue 12: a classifier's tables are filled through the maps' mappings. The mapped fill writes what update batches
    /// write (value sizes that are and are not multiples of 8, across pages), and a classifier map's copies are made
    /// mmapable and hold its entries; a key beyond the map is refused as the kernel refuses it.
    /// </summary>
    [Theory]
    [InlineData(8, 70_000)]
    [InlineData(1312, 3_000)]
    [InlineData(4, 5_000)]
    [InlineData(12, 700)]
    public void AMappedFillHoldsWhatUpdateBatchesHold(int valueSize, int n)
    {
        var random = new Random(valueSize);
        var entries = new List<(byte[] Key, byte[] Value)>();
        foreach (var i in Enumerable.Range(0, n).Where(_ => random.Next(3) > 0))
        {
            var value = new byte[valueSize];
            random.NextBytes(value);
            entries.Add((BitConverter.GetBytes(i), value));
        }
        using var batched = BpfMap.Create(BpfMapType.Array, "um_batched", 4, valueSize, n);
        using var a = BpfMap.Create(BpfMapType.Array, "um_a", 4, valueSize, n, BpfMap.Mmapable);
        using var b = BpfMap.Create(BpfMapType.Array, "um_b", 4, valueSize, n, BpfMap.Mmapable);
        batched.UpdateMany(entries);
        BpfMap.FillMapped([a, b], entries);
        Span<byte> want = stackalloc byte[valueSize], got = stackalloc byte[valueSize];
        for (var i = 0; i < n; i++)
        {
            Assert.True(batched.TryLookup(BitConverter.GetBytes(i), want));
            foreach (var m in new[] { a, b })
            {
                Assert.True(m.TryLookup(BitConverter.GetBytes(i), got));
                Assert.True(want.SequenceEqual(got), $"entry {i} of {m.Name}");
            }
        }
        var beyond = Assert.Throws<BpfException>(() => BpfMap.FillMapped([a], [(BitConverter.GetBytes(n), new byte[valueSize])]));
        Assert.Equal(7, beyond.Errno);
    }

    [Fact]
    public void AClassifierMapsCopiesAreFilledThroughTheirMappings()
    {
        var entries = Enumerable.Range(0, 3000).Select(i => (BitConverter.GetBytes(i * 3), BitConverter.GetBytes((long)i * 7919))).ToList();
        var spec = new Bpfilter.Backend.Codegen.MapSpec(Bpfilter.Backend.Codegen.ClassifierTables.VectorMap(0), BpfMapType.Array, 4, 8, 9000, entries)
        {
            DoubleBuffered = true,
        };
        var copies = Bpfilter.Backend.Loader.SetCopies.Create(spec);
        try
        {
            Span<byte> got = stackalloc byte[8];
            foreach (var copy in copies.Copies)
            {
                Assert.Equal(BpfMap.Mmapable, copy.Flags & BpfMap.Mmapable);
                Assert.Equal(BpfMap.Mmapable, BpfInfo.Map(copy.Fd.Value).Flags & BpfMap.Mmapable);
                for (var i = 0; i < 9000; i++)
                {
                    Assert.True(copy.TryLookup(BitConverter.GetBytes(i), got));
                    Assert.Equal(i % 3 == 0 ? (long)(i / 3) * 7919 : 0, BitConverter.ToInt64(got));
                }
            }
        }
        finally
        {
            copies.Close();
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
