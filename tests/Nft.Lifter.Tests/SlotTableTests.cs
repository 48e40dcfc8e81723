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
}
