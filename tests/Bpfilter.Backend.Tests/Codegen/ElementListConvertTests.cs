using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// An element's value carried into a program whose set holds other statement lists (ElementLists.Convert): the code's tag
/// rewritten to its list's index there, the expiry, timeout and its own list's state where they were, the rest zero, a map's
/// data moved to its place after the longer state; an element whose list the new set lacks is not converted.
/// </summary>
public class ElementListConvertTests
{
    static readonly ValueList<Statement> Counter = ValueList.Of<Statement>(new CounterStatement(0));
    static readonly ValueList<Statement> CounterQuota = ValueList.Of<Statement>(new CounterStatement(0), new QuotaStatement(1000, false, 0));

    static SetLayout Layout(ValueList<Statement> statements, params ValueList<Statement>[] lists) =>
        new(new Backend.Ir.Set("m", Fields.Ip.Saddr, new SetData.Bytes(32), ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = statements, PacketStatementLists = lists.ToValueList(),
        }, []);

    [Fact]
    public void AValueKeepsItsStateAndDataWithItsTagRewritten()
    {
        var was = Layout(Counter);
        var now = Layout(CounterQuota, CounterQuota, Counter);
        Assert.True(now.ValueSize > was.ValueSize);
        var value = new byte[was.ValueSize];
        BinaryPrimitives.WriteUInt32LittleEndian(value, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), 1); // statements, tag 0
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(SetLayout.ExpiresOffset), 777);
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(SetLayout.TimeoutOffset), 55);
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(was.PacketStateOffset(0, 0)), 3);
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(was.PacketStateOffset(0, 0) + 8), 120);
        BinaryPrimitives.WriteUInt32BigEndian(value.AsSpan(was.MapDataOffset), 0xc6120005);

        var tags = ElementLists.TagMap(was, now)!;
        Assert.Equal([1], tags);
        var converted = ElementLists.Convert(was, now, tags, value)!;
        Assert.Equal(now.ValueSize, converted.Length);
        Assert.Equal(1u | 1u << SetLayout.TagShift, BinaryPrimitives.ReadUInt32LittleEndian(converted.AsSpan(4)));
        Assert.Equal(777UL, BinaryPrimitives.ReadUInt64LittleEndian(converted.AsSpan(SetLayout.ExpiresOffset)));
        Assert.Equal(55UL, BinaryPrimitives.ReadUInt64LittleEndian(converted.AsSpan(SetLayout.TimeoutOffset)));
        Assert.Equal((3UL, 120UL), (BinaryPrimitives.ReadUInt64LittleEndian(converted.AsSpan(now.PacketStateOffset(1, 0))),
            BinaryPrimitives.ReadUInt64LittleEndian(converted.AsSpan(now.PacketStateOffset(1, 0) + 8))));
        Assert.Equal(0xc6120005u, BinaryPrimitives.ReadUInt32BigEndian(converted.AsSpan(now.MapDataOffset)));
        // the bytes between its own list's state and the data are zero
        Assert.All(converted[now.PacketStateOffset(1, 1)..now.MapDataOffset], b => Assert.Equal(0, b));
        // bit 1 (not yet in the other copy) is kept with the new tag
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), 3);
        Assert.Equal(3u | 1u << SetLayout.TagShift, BinaryPrimitives.ReadUInt32LittleEndian(ElementLists.Convert(was, now, tags, value)!.AsSpan(4)));

        // back to a set holding the counter alone: the tag becomes 0 again, the value as it was
        var back = ElementLists.Convert(now, was, ElementLists.TagMap(now, was)!, converted)!;
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), 1);
        Assert.Equal(value, back);
        // an element of the counter-and-quota list has no place in that set
        BinaryPrimitives.WriteUInt32LittleEndian(converted.AsSpan(4), 1);
        Assert.Null(ElementLists.Convert(now, was, ElementLists.TagMap(now, was)!, converted));
        // a control-plane element (code 0) keeps its data and expiry
        var plain = new byte[was.ValueSize];
        BinaryPrimitives.WriteUInt32LittleEndian(plain, 1);
        BinaryPrimitives.WriteUInt32BigEndian(plain.AsSpan(was.MapDataOffset), 7);
        var carried = ElementLists.Convert(was, now, tags, plain)!;
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(carried.AsSpan(4)));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32BigEndian(carried.AsSpan(now.MapDataOffset)));
    }
}
