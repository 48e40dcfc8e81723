using System.Buffers.Binary;
using System.Collections.Immutable;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;

namespace Nft.Engine.Tests;

/// <summary>
/// <see cref="StateCodec.Encode"/> writes the records into the file it sized by measuring them first, except a big set's
/// elements, which it estimates: then the bytes are copied into a file of the right size. Either way the file is the
/// whole state (its length is the header's, its hash checks, it reads back), encoding it again (every rule's message kept
/// by then) gives the same bytes.
/// </summary>
public class StateFileSizeTests
{
    static ElementRecord Element(uint key, long seq)
    {
        var k = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(k, key);
        return new ElementRecord(new ElementKey(k, null, 0), new SetElement { Key = new ValueData(k) }, null, null) { InsertSeq = seq };
    }

    static SetRecord Set(string name, ulong handle, int elements)
    {
        var b = ElementSet.Empty.ToBuilder();
        for (int i = 0; i < elements; i++) b.Add(Element((uint)i * 7, i));
        return new SetRecord(new Set { Name = name, Handle = handle, KeyType = 7, KeyLen = 4, Flags = 0 }, b.ToImmutable());
    }

    static RuleRecord Rule(ulong handle) => new(new Rule
    {
        Handle = handle,
        Expressions = [new PayloadExpr(1, 12, 4, 1), new CmpExpr(1, CmpExpr.Eq, new ValueData([10, 0, 0, (byte)handle])), new CounterExpr(3, 300)],
    }, [null, null, new CounterCell(3, 300)]);

    static RulesetSnapshot Snapshot(params SetRecord[] sets) =>
        new([new TableRecord(new Table { Family = 2, Name = "t", Handle = 1 }, new HandleCounter(100),
            [new ChainRecord(new Chain { Name = "c", Handle = 2 }, [.. Enumerable.Range(10, 50).Select(h => Rule((ulong)h))])],
            [.. sets], [])]);

    [Theory]
    [InlineData(0, 0)]
    [InlineData(10, 5)]    // measured: the records' size is exact
    [InlineData(4097, 3)]  // estimated: copied into a file of the right size
    [InlineData(5000, 0)]
    public void TheFileIsTheWholeStateWhetherItsSizeWasMeasuredOrEstimated(int bigSet, int backendBytes)
    {
        var snapshot = Snapshot(Set("a", 3, bigSet), Set("b", 4, 2));
        var counters = new StateCodec.Counters(5, 9, 4000, backendBytes > 0 ? [.. Enumerable.Range(1, backendBytes).Select(i => (byte)i)] : null);
        var first = StateCodec.Encode(snapshot, counters);
        Assert.Equal((ulong)(first.Length - 28), BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(12)));

        Assert.Equal(first, StateCodec.Encode(snapshot, counters));
        var (read, readCounters) = StateCodec.Decode(first);
        Assert.Equal(first, StateCodec.Encode(read, readCounters));
        Assert.Equal(bigSet, read.Tables[0].Sets[0].Elements.Count);
    }
}
