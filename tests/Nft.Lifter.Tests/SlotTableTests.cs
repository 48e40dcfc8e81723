namespace Nft.Lifter.Tests;

/// <summary>
/// The slot tables keep each slot's key beside each key's slot (<see cref="SlotTable{TKey}.TryGetKey"/>, which a lift
/// uses for the objects an object map may name): after any sequence of hand-outs, retains and a restore it is
/// exactly the inverse of <see cref="SlotTable{TKey}.Slots"/>.
/// </summary>
public class SlotTableTests
{
    static void AssertInverse(SlotTable<CounterKey> slots, ulong maxSlot)
    {
        foreach (var (key, slot) in slots.Slots)
        {
            Assert.True(slots.TryGetKey(slot, out var k));
            Assert.Equal(key, k);
        }
        var used = slots.Slots.Values.ToHashSet();
        for (ulong s = 0; s <= maxSlot; s++)
            if (!used.Contains(s)) Assert.False(slots.TryGetKey(s, out _), $"slot {s} is free but names a key");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void EachSlotsKeyIsTheInverseOfEachKeysSlot(int seed)
    {
        var rng = new Random(seed);
        var slots = new CounterSlots();
        CounterKey Key(int i) => i % 5 == 0 ? CounterKey.Named(2, "t", $"n{i}") : new CounterKey(2, "t", "c", (ulong)i);
        ulong max = 0;
        for (int round = 0; round < 200; round++)
        {
            for (int k = rng.Next(1, 20); k > 0; k--) max = Math.Max(max, slots.GetOrAdd(Key(rng.Next(300))));
            if (rng.Next(3) == 0) slots.Retain(slots.Slots.Keys.Where(_ => rng.Next(2) == 0).ToList());
            AssertInverse(slots, max + 1);
        }
        // a restarted daemon takes the assignment over
        var restored = new CounterSlots();
        restored.Restore(slots.Slots.Select(kv => (kv.Key, kv.Value)));
        AssertInverse(restored, max + 1);
        Assert.Throws<ArgumentException>(() => new CounterSlots().Restore([(Key(1), 3UL), (Key(2), 3UL)]));
    }

    /// <summary>A key that counts the times it is hashed.</summary>
    readonly record struct HashedKey(int Id)
    {
        public static int Hashes;
        public override int GetHashCode() { Interlocked.Increment(ref Hashes); return Id; }
    }

    [Fact]
    public void ALiftsOwnSlotsAreRetainedWithoutHashingAKey()
    {
        var slots = new SlotTable<HashedKey>();
        var live = Enumerable.Range(0, 10_000).ToDictionary(i => new HashedKey(i), i => slots.GetOrAdd(new HashedKey(i)));
        var version = slots.Version;
        HashedKey.Hashes = 0;
        slots.Retain(live);
        Assert.Equal(0, HashedKey.Hashes);
        Assert.Equal(version, slots.Version);
        Assert.Equal(10_000, slots.Slots.Count);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void RetainingALiftFreesWhatRetainingItsKeysFrees(int seed)
    {
        var rng = new Random(seed);
        SlotTable<CounterKey> byKeys = new(), byLift = new();
        CounterKey Key(int i) => new(2, "t", "c", (ulong)i);
        for (int round = 0; round < 300; round++)
        {
            var lift = new Dictionary<CounterKey, ulong>();
            foreach (var i in Enumerable.Range(0, rng.Next(0, 40)).Select(_ => rng.Next(60)).Distinct())
            {
                var slot = byKeys.GetOrAdd(Key(i));
                Assert.Equal(slot, byLift.GetOrAdd(Key(i)));
                lift[Key(i)] = slot;
            }
            // a lift that lost a key's slot, or names a slot another key holds, is retained by its keys too
            if (rng.Next(8) == 0 && lift.Count > 0) lift[lift.Keys.First()] = 1_000_000;
            if (rng.Next(2) == 0)
            {
                byKeys.Retain(lift.Keys);
                byLift.Retain(lift);
            }
            Assert.Equal(byKeys.Slots.OrderBy(kv => kv.Value), byLift.Slots.OrderBy(kv => kv.Value));
            Assert.Equal(byKeys.Version, byLift.Version);
        }
    }
}
