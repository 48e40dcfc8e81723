using System.Text;
using Bpfilter.Backend.Codegen;
using Bpfilter.Daemon.Enforcement;
using Bpfilter.Daemon.Placement;
using Nft.Bytecode;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>The counter state file: version 5 keeps quota and limit slots, the programs' counter layouts and the element statement lists of packet-written sets (version 6 adds kernel quota start points, version 7 BPF's part of kernel rule counters both sides counted, version 8 the expression
/// index of a rule's later counters, version 11 the named counters and quotas neither side holds); versions 10, 9, 8, 7, 6, 5, 4, 3, 2 and 1 are still read.</summary>
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
    public void Version8KeepsQuotaAndLimitSlotsWithTheQuotaBasesCounterLayoutsAndElementLists()
    {
        var anonymous = new StatefulKey(2, "t", "in", 4, 1, null);
        var named = StatefulKey.Named(2, "t", "q");
        var current = CounterState.Encode([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], null,
            [new CounterState.Quota(anonymous, 3, 100), new CounterState.Quota(named, 0, 0)], [new CounterState.Limit(anonymous with { ExpressionIndex = 2 }, 5)],
            new Dictionary<string, CounterLayout> { ["xdp veth0"] = new(new Dictionary<ulong, int> { [7] = 3 }, 5) }, Lists);
        Assert.Equal(12, current[0]);
        // version 11 from here: the same without the limits' last reaches (an empty boot id and a zero count)
        var bytes = current[..^5];
        bytes[0] = 11;

        var saved = CounterState.Decode(bytes);
        Assert.Equal([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], saved.BpfCounters);
        Assert.Equal([new CounterState.Quota(anonymous, 3, 100), new CounterState.Quota(named, 0, 0)], saved.Quotas);
        Assert.Equal([new CounterState.Limit(anonymous with { ExpressionIndex = 2 }, 5)], saved.Limits);
        Assert.Null(saved.Quotas[1].Key.Chain);
        var layout = Assert.Single(saved.Layouts);
        Assert.Equal(("xdp veth0", 5, 3), (layout.Key, layout.Value.Next, layout.Value.Slots[7]));
        var lists = Assert.Single(saved.ElementLists);
        Assert.Equal(("ip/t/s", Lists["ip/t/s"]), (lists.Key, lists.Value));

        // version 10: the same without the unplaced objects (its last list, empty here, is a zero count)
        var v10 = bytes.ToArray();
        v10[0] = 10;
        var fromV10 = CounterState.Decode(v10.AsSpan(0, v10.Length - 4));
        Assert.Empty(fromV10.Unplaced);
        Assert.Equal([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], fromV10.BpfCounters);

        // version 8: the same without the kernel named counters' carried counts either
        var v8 = bytes.ToArray();
        v8[0] = 8;
        var fromV8 = CounterState.Decode(v8.AsSpan(0, v8.Length - 8));
        Assert.Empty(fromV8.KernelObjectsCarried);
        Assert.Equal([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], fromV8.BpfCounters);

        // version 7: the same without the BPF entry's expression index either (the rule's first counter, as every rule counter was)
        var v7 = Older(bytes, 7);
        Assert.Equal([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], CounterState.Decode(v7.AsSpan(0, v7.Length - 8)).BpfCounters);

        // version 6: the same without the kernel rules' carried counts
        var v6 = Older(bytes, 6);
        var fromV6 = CounterState.Decode(v6.AsSpan(0, v6.Length - 12));
        Assert.Empty(fromV6.KernelRulesCarried);
        Assert.Single(fromV6.ElementLists);

        // version 5: the same without the kernel quota start points either
        var v5 = Older(bytes, 5);
        var fromV5 = CounterState.Decode(v5.AsSpan(0, v5.Length - 16));
        Assert.Empty(fromV5.KernelQuotaStarts);
        Assert.Single(fromV5.ElementLists);

        // version 4: the same without the element lists (its last list, empty here, is a zero count) nor the later lists
        var v4 = Older(CounterState.Encode([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], null,
            layouts: new Dictionary<string, CounterLayout> { ["xdp veth0"] = new(new Dictionary<ulong, int> { [7] = 3 }, 5) }), 4);
        var fromV4 = CounterState.Decode(v4.AsSpan(0, v4.Length - 25));
        Assert.Empty(fromV4.ElementLists);
        Assert.Single(fromV4.Layouts);

        // version 3: the same without the layouts and lists (its last lists, empty here, are zero counts)
        var v3 = Older(CounterState.Encode([new CounterState.Bpf(Rule, (1, 29), (0, 0), 7)], null), 3);
        Assert.Empty(CounterState.Decode(v3.AsSpan(0, v3.Length - 29)).Layouts);
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

    /// <summary>
    /// A version 8 file with one BPF counter entry (<see cref="Rule"/>'s) as an older version wrote it: without the entry's
    /// expression index (its last 4 bytes), the version byte set.
    /// </summary>
    static byte[] Older(byte[] v8, byte version)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true)) CounterState.Write(w, new CounterState.Bpf(Rule, (1, 29), (0, 0), 7));
        int end = CounterState.HeadSize + (int)ms.Length;
        var older = v8[..(end - 4)].Concat(v8[end..]).ToArray();
        older[0] = version;
        return older;
    }

    /// <summary>Version 8 keeps which counter of a rule an entry is: the rule's first (no index, as older versions named it) or a later one.</summary>
    [Fact]
    public void Version8KeepsTheExpressionIndexOfARulesLaterCounters()
    {
        var later = Rule with { ExpressionIndex = 3 };
        var entries = new[] { new CounterState.Bpf(Rule, (4, 116), (0, 0), 0), new CounterState.Bpf(later, (2, 58), (0, 0), 1) };
        var bytes = CounterState.Encode(entries, null);
        Assert.Equal(entries, CounterState.Decode(bytes).BpfCounters);
        for (int n = 1; n < bytes.Length; n++) Assert.Throws<InvalidDataException>(() => CounterState.Decode(bytes.AsSpan(0, n)));
        // an index on a named counter's entry is refused
        var named = CounterState.Encode([new CounterState.Bpf(CounterKey.Named(2, "t", "c") with { ExpressionIndex = 1 }, (0, 0), (0, 0), 0)], null);
        Assert.Throws<InvalidDataException>(() => CounterState.Decode(named));
    }

    /// <summary>Version 7 keeps BPF's part of each kernel rule counter both sides counted (KernelCounterView.Carry).</summary>
    [Fact]
    public void Version7KeepsWhatKernelRulesListBesidesTheirOwnCount()
    {
        // the view reads the kernel only for a listing: none here
        var kernel = new KernelCounterView(null!);
        kernel.Carry(5, "t", 4, 0, new CounterValue(3, 87));
        kernel.Carry(5, "t", 4, 0, new CounterValue(1, 29));
        kernel.Carry(5, "t", 6, 2, new CounterValue(2, 58));
        // version 9: and what BPF counted for a named counter after its count went to the kernel
        kernel.CarryObject(new KernelObjectKey(5, "t", NftObjectType.Counter, "named"), new CounterValue(7, 203));
        // version 10: each by its type too (nf_tables keys objects by type: a quota may share the counter's name)
        kernel.CarryObject(new KernelObjectKey(5, "t", NftObjectType.Quota, "named"), new CounterValue(0, 29));
        var bytes = CounterState.Encode([], kernel);
        var saved = CounterState.Decode(bytes);
        Assert.Equal([((5, "t", 4UL, 0), new CounterValue(4, 116)), ((5, "t", 6UL, 2), new CounterValue(2, 58))],
            saved.KernelRulesCarried.OrderBy(c => c.Key.Item3).Select(c => ((c.Key.Item1, c.Key.Item2, c.Key.Item3, c.Key.Item4), c.Bpf)));
        Assert.Equal([(new KernelObjectKey(5, "t", NftObjectType.Counter, "named"), new CounterValue(7, 203)), (new KernelObjectKey(5, "t", NftObjectType.Quota, "named"), new CounterValue(0, 29))],
            saved.KernelObjectsCarried.OrderBy(c => c.Key.Type).Select(c => (c.Key, c.Bpf)));
        for (int n = 1; n < bytes.Length; n++) Assert.Throws<InvalidDataException>(() => CounterState.Decode(bytes.AsSpan(0, n)));
    }

    /// <summary>Version 11 keeps the named counters and quotas neither side holds, with their counts and a quota's start point (UnplacedObjects).</summary>
    [Fact]
    public void Version11KeepsTheObjectsNeitherSideHolds()
    {
        var unplaced = new[]
        {
            (new KernelObjectKey(1, "t", NftObjectType.Counter, "x"), new UnplacedCount(new CounterValue(2, 58))),
            (new KernelObjectKey(1, "t", NftObjectType.Quota, "x"), new UnplacedCount(new CounterValue(0, 87), 1000)),
        };
        var bytes = CounterState.Encode([], null, unplaced: unplaced);
        Assert.Equal(unplaced, CounterState.Decode(bytes).Unplaced);
        for (int n = 1; n < bytes.Length; n++) Assert.Throws<InvalidDataException>(() => CounterState.Decode(bytes.AsSpan(0, n)));
        // an object given twice is refused
        var twice = CounterState.Encode([], null, unplaced: [unplaced[0], unplaced[0]]);
        Assert.Throws<InvalidDataException>(() => CounterState.Decode(twice));
    }

    /// <summary>
    /// Version 12 keeps when the kernel copy's limits were last reached, with the boot the times count in (a rule reached
    /// without a hidden `last` has no time); a version 11 file has none (the restarted daemon marks every adopted limit).
    /// </summary>
    [Fact]
    public void Version12KeepsWhenTheKernelCopysLimitsWereLastReached()
    {
        var memory = new KernelLimitIdle.Memory("boot-1", [
            new(1, "t", "c", 4, 5, null, null, 1234), new(1, "t", null, 0, 0, "l", null, null), new(5, "u", null, 0, 0, null, "m", -5)]);
        var bytes = CounterState.Encode([], null, limitsReached: memory);
        var back = CounterState.Decode(bytes).LimitsReached;
        Assert.NotNull(back);
        Assert.Equal("boot-1", back.BootId);
        Assert.Equal(memory.Reached, back.Reached);
        for (int n = 1; n < bytes.Length; n++) Assert.Throws<InvalidDataException>(() => CounterState.Decode(bytes.AsSpan(0, n)));
        // a target given twice is refused
        var twice = CounterState.Encode([], null, limitsReached: memory with { Reached = [memory.Reached[0], memory.Reached[0] with { At = 9 }] });
        Assert.Throws<InvalidDataException>(() => CounterState.Decode(twice));
        // version 11: no boot id (1 byte) and no count (4 bytes)
        var v11 = CounterState.Encode([], null)[..^5];
        v11[0] = 11;
        Assert.Null(CounterState.Decode(v11).LimitsReached);
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
