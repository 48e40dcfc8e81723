using System.Buffers.Binary;
using System.Text;

namespace Nft.Engine.Tests;

/// <summary>
/// BackendStateDelta: a rule journal record's backend part as the change of bytes from the state before it.
/// Applied to its base it gives exactly the bytes it was made for, whatever was inserted, removed or overwritten;
/// one counter entry added among 10,000 is a delta of that entry, not the state; any other base and any damage is refused.
/// </summary>
public class BackendStateDeltaTests
{
    /// <summary>bpfilterd's counter state in shape: a count, then per rule family, table, chain, handle, 32 zero bytes, slot; then the layout.</summary>
    static byte[] Ledger(IEnumerable<ulong> handles)
    {
        var list = handles.ToList();
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8);
        w.Write((byte)4);
        w.Write(list.Count);
        foreach (var h in list)
        {
            w.Write((byte)2);
            w.Write("t");
            w.Write("c");
            w.Write(h);
            w.Write(new byte[32]);
            w.Write(h + 1000);
        }
        w.Write((ulong)list.Count);
        w.Write(list.Count);
        foreach (var h in list) w.Write(h + 1000);
        w.Flush();
        return ms.ToArray();
    }

    static void RoundTrip(byte[] from, byte[] to) => Assert.Equal(to, BackendStateDelta.Apply(from, BackendStateDelta.Of(from, to)));

    [Fact]
    public void OneRuleAmongTenThousandIsADeltaOfItsEntryAndGivesTheBytesBack()
    {
        var handles = Enumerable.Range(4, 10_000).Select(i => (ulong)i).ToList();
        var before = Ledger(handles);
        Assert.True(before.Length > 500_000, $"{before.Length}");
        // appended, inserted in the middle, the first removed, and one replaced by a new handle
        byte[][] afters =
        [
            Ledger([.. handles, 20_000]),
            Ledger([.. handles[..5000], 20_000, .. handles[5000..]]),
            Ledger(handles[1..]),
            Ledger([.. handles[..7000], 20_000, .. handles[7001..]]),
        ];
        foreach (var after in afters)
        {
            var delta = BackendStateDelta.Of(before, after);
            Assert.True(delta.Length < 300, $"a delta of {delta.Length} bytes");
            Assert.Equal(after, BackendStateDelta.Apply(before, delta));
        }
    }

    [Fact]
    public void RandomEditsOfRepetitiveBytesReplayExactly()
    {
        for (int seed = 0; seed < 300; seed++)
        {
            var rng = new Random(seed);
            // entries that repeat but for a counter in each, as the backend's are; sometimes nothing at all
            var from = Ledger(Enumerable.Range(0, rng.Next(0, 200)).Select(i => (ulong)rng.Next(0, 50)));
            var to = new List<byte>(from);
            for (int k = rng.Next(0, 6); k > 0; k--)
            {
                int at = rng.Next(0, to.Count + 1);
                switch (rng.Next(3))
                {
                    case 0:
                        var bytes = new byte[rng.Next(1, 100)];
                        rng.NextBytes(bytes);
                        to.InsertRange(at, bytes);
                        break;
                    case 1:
                        to.RemoveRange(at, rng.Next(0, to.Count - at + 1));
                        break;
                    default:
                        for (int i = at; i < Math.Min(to.Count, at + rng.Next(1, 40)); i++) to[i] = (byte)rng.Next(256);
                        break;
                }
            }
            RoundTrip(from, [.. to]);
            RoundTrip([.. to], from);
        }
        RoundTrip([], []);
        RoundTrip([], [1, 2, 3]);
        RoundTrip([1, 2, 3], []);
    }

    /// <summary>
    /// bpfilterd's version 5 counter state byte for byte as an XDP attach point's: per rule family 5, table "bench", chain
    /// "c", handle, no object, 32 zero bytes, slot; no kernel counters, quotas, limits; one layout "xdp fw0" (next, count,
    /// then id and slot per counter); no element lists.
    /// </summary>
    static byte[] XdpCounterState(int rules)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8);
        w.Write((byte)5);
        w.Write(rules);
        for (int i = 0; i < rules; i++)
        {
            w.Write((byte)5);
            w.Write("bench");
            w.Write("c");
            w.Write((ulong)i + 2);
            w.Write("");
            w.Write(new byte[32]);
            w.Write((ulong)i);
        }
        for (int section = 0; section < 4; section++) w.Write(0);
        w.Write(1);
        w.Write("xdp fw0");
        w.Write(rules);
        w.Write(rules);
        for (int i = 0; i < rules; i++)
        {
            w.Write((ulong)i);
            w.Write(i);
        }
        w.Write(0);
        w.Flush();
        return ms.ToArray();
    }

    [Fact]
    public void ARuleAppendedToTenThousandIsASmallDeltaWithoutIndexingTheBase()
    {
        // the appended entry's zeros match the zero counts after the entries by chance: the scan has to find the
        // sections after the entries again a few bytes on, not by indexing the whole base (it did, on every add)
        for (int rules = 10_000; rules < 10_005; rules++)
        {
            var (before, after) = (XdpCounterState(rules), XdpCounterState(rules + 1));
            int indexes = BackendStateDelta.BaseIndexes;
            var delta = BackendStateDelta.Of(before, after);
            Assert.Equal(indexes, BackendStateDelta.BaseIndexes);
            Assert.True(delta.Length < 1000, $"a delta of {delta.Length} bytes");
            Assert.Equal(after, BackendStateDelta.Apply(before, delta));
        }
    }

    [Fact]
    public void AnotherBaseAndEveryDamagedByteAreRefused()
    {
        var handles = Enumerable.Range(4, 300).Select(i => (ulong)i).ToList();
        var before = Ledger(handles);
        var delta = BackendStateDelta.Of(before, Ledger([.. handles[..100], 9999, .. handles[100..]]));
        Assert.Throws<InvalidDataException>(() => BackendStateDelta.Apply(Ledger(handles[1..]), delta));
        Assert.Throws<InvalidDataException>(() => BackendStateDelta.Apply(before, delta[..^1]));
        Assert.Throws<InvalidDataException>(() => BackendStateDelta.Apply(before, delta[..10]));
        for (int i = 0; i < delta.Length; i++)
        {
            var damaged = (byte[])delta.Clone();
            damaged[i] ^= 0x41;
            Assert.Throws<InvalidDataException>(() => BackendStateDelta.Apply(before, damaged));
        }
        // a copy that claims more than the base holds
        var huge = (byte[])delta.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(huge.AsSpan(12), uint.MaxValue);
        Assert.Throws<InvalidDataException>(() => BackendStateDelta.Apply(before, huge));
    }
}
