using Bpfilter.Backend.Codegen;
using Bpfilter.Daemon.Enforcement;
using Nft.Lifter;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>The incremental counter state encoder gives, after every commit, the bytes the whole encoding gives.</summary>
public sealed class CounterStateEncoderTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomCommitsEncodeAsTheWholeEncoding(int seed)
    {
        var rnd = new Random(seed);
        var entries = new List<CounterState.Bpf>();
        ulong nextSlot = 1, nextHandle = 2;
        CounterState.Bpf Fresh() => new(new CounterKey((byte)rnd.Next(1, 3), rnd.Next(3) == 0 ? "u" : "t", rnd.Next(2) == 0 ? "in" : "fwd", nextHandle++)
            { Object = rnd.Next(8) == 0 ? $"named{rnd.Next(5)}" : null }, ((ulong)rnd.Next(1000), (ulong)rnd.Next(100_000)), ((ulong)rnd.Next(10), (ulong)rnd.Next(1000)), nextSlot++);
        for (int i = 0; i < 200; i++) entries.Add(Fresh());

        var encoder = new CounterStateEncoder();
        for (int commit = 0; commit < 300; commit++)
        {
            // the edits a commit makes: rules appended (most often), inserted, deleted, replaced, counters reset or carried over
            for (int edits = rnd.Next(1, 4); edits > 0; edits--)
            {
                int at = entries.Count == 0 ? 0 : rnd.Next(entries.Count);
                switch (rnd.Next(8))
                {
                    case 0 or 1 or 2: entries.Add(Fresh()); break;
                    case 3: entries.Insert(at, Fresh()); break;
                    case 4 when entries.Count > 0: entries.RemoveAt(at); break;
                    case 5 when entries.Count > 0: entries[at] = Fresh() with { Key = entries[at].Key }; break;
                    case 6 when entries.Count > 0: entries[at] = entries[at] with { Zero = ((ulong)rnd.Next(50), (ulong)rnd.Next(5000)) }; break;
                    case 7 when entries.Count > 0: entries[at] = entries[at] with { Carried = (entries[at].Carried.Item1 + 1, entries[at].Carried.Item2 + 60) }; break;
                }
            }
            // as the backend exports: new records equal to the kept ones, a new list each time
            var export = entries.Select(e => e with { }).ToList();
            var layouts = new Dictionary<string, CounterLayout>(StringComparer.Ordinal)
            {
                ["xdp veth0"] = new(entries.Select((e, i) => (e.Slot!.Value, i)).ToDictionary(p => p.Item1, p => p.Item2), entries.Count + rnd.Next(3)),
            };
            if (rnd.Next(2) == 0) layouts["nf ip input"] = new(new Dictionary<ulong, int> { [nextSlot] = 0 }, 1);
            var quotas = rnd.Next(3) == 0 ? new[] { new CounterState.Quota(StatefulKey.Named(2, "t", "q"), 3, (ulong)commit) } : null;
            var limits = rnd.Next(3) == 0 ? new[] { new CounterState.Limit(new StatefulKey(2, "t", "in", 4, 1, null), 5) } : null;

            var incremental = encoder.Encode(export, null, quotas, limits, layouts, null);
            var whole = CounterState.Encode(export, null, quotas, limits, layouts, null);
            Assert.Equal(whole, incremental);
            Assert.Equal(entries, CounterState.Decode(incremental).BpfCounters);
        }
    }

    [Fact]
    public void AnEntryWithoutASlotFailsAndTheNextExportIsStillTheWholeEncoding()
    {
        var a = new CounterState.Bpf(new CounterKey(2, "t", "in", 4), (1, 60), (0, 0), 7);
        var b = new CounterState.Bpf(new CounterKey(2, "t", "in", 5), (2, 120), (0, 0), 8);
        var encoder = new CounterStateEncoder();
        Assert.Equal(CounterState.Encode([a], null), encoder.Encode([a], null, null, null, null, null));
        Assert.Throws<ArgumentException>(() => encoder.Encode([a, b with { Slot = null }], null, null, null, null, null));
        Assert.Equal(CounterState.Encode([a, b], null), encoder.Encode([a, b], null, null, null, null, null));
        Assert.Equal(CounterState.Encode([b], null), encoder.Encode([b], null, null, null, null, null));
        Assert.Equal(CounterState.Encode([], null), encoder.Encode([], null, null, null, null, null));
    }
}
