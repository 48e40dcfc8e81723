using System.Text;
using Bpfilter.Backend.Codegen;
using Bpfilter.Daemon.Enforcement;
using Nft.Lifter;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>The counter state file: version 5 keeps quota and limit slots, the programs' counter layouts and the element statement lists of packet-written sets (version 6 adds kernel quota start points); versions 5, 4, 3, 2 and 1 are still read.</summary>
public sealed class CounterStatePersistenceTests
{
    static readonly CounterKey Rule = new(2, "t", "in", 4);

    /// <summary>A set whose elements carry a counter and quota, or a byte limit with `over`.</summary>
    static readonly Dictionary<string, Backend.Ir.ValueList<Backend.Ir.ValueList<Backend.Ir.Statement>>> Lists = new()
    {
        ["ip/t/s"] = Backend.Ir.ValueList.Of(
            Backend.Ir.ValueList.Of<Backend.Ir.Statement>(new Backend.Ir.CounterStatement(0), new Backend.Ir.QuotaStatement(100_000, true, 0)),
            Backend.Ir.ValueList.Of<Backend.Ir.Statement>(new Backend.Ir.LimitStatement(3, TimeSpan.FromMinutes(1), 7, Backend.Ir.LimitType.Bytes, true))),
    };

    [Fact]
    public void Version6KeepsQuotaAndLimitSlotsWithTheQuotaBasesCounterLayoutsAndElementLists()
    {
        var anonymous = new StatefulKey(2, "t", "in", 4, 1, null);
        var named = StatefulKey.Named(2, "t", "q");
        var bytes = CounterState.Encode([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], null,
            [new CounterState.Quota(anonymous, 3, 100), new CounterState.Quota(named, 0, 0)], [new CounterState.Limit(anonymous with { ExpressionIndex = 2 }, 5)],
            new Dictionary<string, CounterLayout> { ["xdp veth0"] = new(new Dictionary<ulong, int> { [7] = 3 }, 5) }, Lists);
        Assert.Equal(6, bytes[0]);

        var saved = CounterState.Decode(bytes);
        Assert.Equal([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], saved.BpfCounters);
        Assert.Equal([new CounterState.Quota(anonymous, 3, 100), new CounterState.Quota(named, 0, 0)], saved.Quotas);
        Assert.Equal([new CounterState.Limit(anonymous with { ExpressionIndex = 2 }, 5)], saved.Limits);
        Assert.Null(saved.Quotas[1].Key.Chain);
        var layout = Assert.Single(saved.Layouts);
        Assert.Equal(("xdp veth0", 5, 3), (layout.Key, layout.Value.Next, layout.Value.Slots[7]));
        var lists = Assert.Single(saved.ElementLists);
        Assert.Equal(("ip/t/s", Lists["ip/t/s"]), (lists.Key, lists.Value));

        // version 5: the same without the kernel quota start points (its last list, empty here, is a zero count)
        var v5 = bytes.ToArray();
        v5[0] = 5;
        var fromV5 = CounterState.Decode(v5.AsSpan(0, v5.Length - 4));
        Assert.Empty(fromV5.KernelQuotaStarts);
        Assert.Single(fromV5.ElementLists);

        // version 4: the same without the element lists (its last list, empty here, is a zero count)
        var v4 = CounterState.Encode([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], null,
            layouts: new Dictionary<string, CounterLayout> { ["xdp veth0"] = new(new Dictionary<ulong, int> { [7] = 3 }, 5) });
        v4[0] = 4;
        var fromV4 = CounterState.Decode(v4.AsSpan(0, v4.Length - 8));
        Assert.Empty(fromV4.ElementLists);
        Assert.Single(fromV4.Layouts);

        // version 3: the same without the layouts and lists (its last lists, empty here, are zero counts)
        var v3 = CounterState.Encode([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], null);
        v3[0] = 3;
        Assert.Empty(CounterState.Decode(v3.AsSpan(0, v3.Length - 12)).Layouts);
        // a slot at or past the layout's next free slot is refused
        var past = CounterState.Encode([], null, layouts: new Dictionary<string, CounterLayout> { ["x"] = new(new Dictionary<ulong, int> { [1] = 5 }, 5) });
        Assert.Throws<InvalidDataException>(() => CounterState.Decode(past));

        // every cut is refused, as are a slot given twice and an unknown key kind
        for (int n = 1; n < bytes.Length; n++) Assert.Throws<InvalidDataException>(() => CounterState.Decode(bytes.AsSpan(0, n)));
        var twice = CounterState.Encode([], null, [new CounterState.Quota(anonymous, 3, 0), new CounterState.Quota(named, 3, 0)]);
        Assert.Throws<InvalidDataException>(() => CounterState.Decode(twice));
        var kind = CounterState.Encode([], null, [new CounterState.Quota(named, 3, 0)]);
        kind[Array.IndexOf(kind, (byte)'q') - 2] = 7; // the kind byte before the name (its length byte, then "q")
        Assert.Throws<InvalidDataException>(() => CounterState.Decode(kind));
    }

    [Fact]
    public void Version2IsReadWithoutQuotaAndLimitSlots()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write((byte)2);
            w.Write(1);
            w.Write(Rule.Family);
            w.Write(Rule.Table);
            w.Write(Rule.Chain);
            w.Write(Rule.RuleHandle);
            w.Write("");
            foreach (var v in new ulong[] { 1, 29, 0, 0, 7 }) w.Write(v);
            w.Write(0);
            w.Write(0);
        }
        var saved = CounterState.Decode(ms.ToArray());
        Assert.Equal([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], saved.BpfCounters);
        Assert.Empty(saved.Quotas);
        Assert.Empty(saved.Limits);
        Assert.Throws<InvalidDataException>(() => CounterState.Decode([5, 0, 0, 0, 0]));
    }
}
