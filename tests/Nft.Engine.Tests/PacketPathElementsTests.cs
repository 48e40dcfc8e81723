using Nft.Bytecode.Data;
using Nft.Engine;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;
using SetElement = Nft.Bytecode.Objects.SetElement;

namespace Nft.Engine.Tests;

/// <summary>
/// Sets the backend's packet path writes (<see cref="IRulesetBackend.PacketPathElements"/>): a batch sees the
/// live elements as the set's, as the kernel's transaction does: deleting or destroying one the packet path added
/// is no ENOENT and becomes a removal for the backend, `flush` removes them, and they count against `size`.
/// </summary>
public class PacketPathElementsTests
{
    sealed class LiveBackend : IRulesetBackend
    {
        public List<SetElement> Live = new();
        public readonly List<RulesetChange> Changes = new();
        public void Prepare(RulesetChange change) => Changes.Add(change);
        public void Commit() { }
        public void Abort() { }
        public CounterValue? ReadCounter(CounterRef c) => null;
        public void ResetCounter(CounterRef c) { }
        /// <summary>The sets asked about, in order.</summary>
        public readonly List<string> Reads = new();
        public IReadOnlyList<SetElement>? PacketPathElements(byte family, string table, string set)
        {
            Reads.Add(set);
            return set == "s" ? Live : null;
        }
    }

    /// <summary>NEWSET of an ipv4_addr set with `size` (NFTA_SET_DESC_SIZE).</summary>
    static byte[] NewSet(uint seq, string name, uint size) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, name);
        w.PutU32Be(3, 0x20); // NFT_SET_EVAL (dynamic)
        w.PutU32Be(4, 7);
        w.PutU32Be(5, 4);
        var desc = w.BeginNested(9);
        w.PutU32Be(1, size);
        w.EndNested(desc);
        w.PutU32Be(10, seq);
    });

    static byte[] Element(byte type, uint seq, byte[]? key, string set = "s")
    {
        var flags = type == 12 ? Create : NlmFlags.Request;
        return Msg(type, flags, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, set);
            if (key == null) return; // DELSETELEM without a list: flush
            var list = w.BeginNested(3);
            var el = w.BeginNested(1);
            var k = w.BeginNested(1);
            w.PutBytes(1, key);
            w.EndNested(k);
            w.EndNested(el);
            w.EndNested(list);
        });
    }

    static SetElement Live(params byte[] key) => new() { Key = new ValueData(key) };

    static (NfTablesEndpoint, LiveBackend) Endpoint()
    {
        var be = new LiveBackend();
        var ep = NewEndpoint(new NfTablesOptions { Backend = be, Requester = p => (p, "nft") });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), NewSet(3, "s", 2)), Port));
        return (ep, be);
    }

    [Fact]
    public void DeletingOrDestroyingAnElementThePacketPathAddedRemovesIt()
    {
        var (ep, be) = Endpoint();
        be.Live = [Live(10, 0, 0, 1), Live(10, 0, 0, 2)];
        Assert.Empty(ep.Process(Batch(Element(14, 2, [10, 0, 0, 1])), Port));
        Assert.Empty(ep.Process(Batch(Element(30, 2, [10, 0, 0, 2]), Element(30, 3, [10, 0, 0, 3])), Port));
        var removed = be.Changes.Skip(1).Select(c => Assert.IsType<ValueData>(Assert.Single(Assert.Single(c.SetDeltas).Removed).Key).Value).ToList();
        Assert.Equal([[10, 0, 0, 1], [10, 0, 0, 2]], removed);
        // an element that is neither committed nor live is ENOENT, as before
        be.Live = [];
        var reply = Messages(ep.Process(Batch(Element(14, 2, [10, 0, 0, 1])), Port));
        Assert.Equal(Errno.ENOENT, Error(reply[0].Bytes).Errno);
    }

    [Fact]
    public void FlushRemovesThePacketPathsElementsAndTheyCountAgainstSize()
    {
        var (ep, be) = Endpoint();
        be.Live = [Live(10, 0, 0, 1), Live(10, 0, 0, 2)];
        var reply = Messages(ep.Process(Batch(Element(12, 2, [10, 0, 0, 3])), Port));
        Assert.Equal(Errno.ENFILE, Error(reply[0].Bytes).Errno);
        Assert.Empty(ep.Process(Batch(Element(14, 2, null)), Port));
        Assert.Equal(2, Assert.Single(be.Changes[^1].SetDeltas).Removed.Count);
        be.Live = [];
        Assert.Empty(ep.Process(Batch(Element(12, 2, [10, 0, 0, 3])), Port));
    }

    [Fact]
    public void ABatchReadsAPacketWrittenSetOnlyWhenItTargetsItAndOnce()
    {
        var (ep, be) = Endpoint();
        Assert.Empty(ep.Process(Batch(NewSet(2, "o", 4)), Port));
        be.Live = [Live(10, 0, 0, 1)];
        be.Reads.Clear();
        Assert.Empty(ep.Process(Batch(Element(12, 2, [10, 0, 0, 9], "o")), Port));
        Assert.Equal(["o"], be.Reads); // the set the batch targets, not s
        Assert.Empty(ep.Process(Batch(AddTable(2, "u")), Port));
        Assert.Equal(["o"], be.Reads); // a batch that touches no set reads none
        Assert.Empty(ep.Process(Batch(Element(12, 2, [10, 0, 0, 2]), Element(14, 3, [10, 0, 0, 1]), Element(12, 4, [10, 0, 0, 3])), Port));
        Assert.Equal(["o", "s"], be.Reads); // once per batch
        var delta = Assert.Single(be.Changes[^1].SetDeltas);
        Assert.Equal([10, 0, 0, 1], Assert.IsType<ValueData>(Assert.Single(delta.Removed).Key).Value);
        Assert.Equal(2, delta.Added.Count);
    }
}
