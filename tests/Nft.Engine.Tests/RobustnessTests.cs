using System.Buffers.Binary;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>Hostile input: never an exception, always well-formed replies, state untouched by garbage.</summary>
public class RobustnessTests
{
    static void AssertWellFormed(IReadOnlyList<byte[]> datagrams)
    {
        foreach (var d in datagrams)
        {
            Assert.NotEmpty(d);
            int off = 0;
            while (off < d.Length)
            {
                Assert.True(d.Length - off >= NlMsgHeader.Size, "stray bytes after the last message");
                var h = NlMsgHeader.Read(d.AsSpan(off));
                Assert.InRange((int)h.Length, NlMsgHeader.Size, d.Length - off);
                if (h.Type == NlMsgType.Error)
                {
                    var body = d.AsSpan(off + NlMsgHeader.Size, (int)h.Length - NlMsgHeader.Size);
                    Assert.True(body.Length >= 4 + NlMsgHeader.Size);
                    Assert.True(BinaryPrimitives.ReadInt32LittleEndian(body) <= 0);
                    if (h.Has(NlmFlags.AckTlvs))
                    {
                        var inner = NlMsgHeader.Read(body[4..]);
                        int echoed = h.Has(NlmFlags.Capped) ? NlMsgHeader.Size : (int)inner.Length;
                        Assert.InRange(4 + NetlinkLimits.Align(echoed), 0, body.Length);
                    }
                }
                off += NetlinkLimits.Align((int)h.Length);
            }
        }
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 1, 2, 3 })]
    [InlineData(new byte[] { 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]  // length beyond the buffer
    [InlineData(new byte[] { 8, 0, 0, 0, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]          // length below a header
    [InlineData(new byte[] { 16, 0, 0, 0, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]         // batch begin without nfgenmsg
    [InlineData(new byte[] { 0x14, 0, 0, 0, 0x10, 0x0a, 5, 0, 0x99, 0x6c, 0, 0, 0, 0, 0, 0, 0, 0, 0x1d, 0x18 })] // GETGEN+ACK, odd res_id
    public void MalformedFramesGetAnErrorOrNothingAndNeverThrow(byte[] bytes)
    {
        var ep = NewEndpoint();
        var replies = ep.Process(bytes, Port);
        AssertWellFormed(replies);
        if (bytes.Length > 0 && bytes.Length < 16) Assert.Equal(Errno.EINVAL, Error(Assert.Single(replies)).Errno);
        Assert.Empty(ep.Ruleset.Tables);
    }

    [Fact]
    public void TruncatedMessageInsideABatchAbortsIt()
    {
        var ep = NewEndpoint();
        var batch = Batch(AddTable(2, "t"), AddChain(3, "t", "c"));
        var cut = batch[..(batch.Length - 30)];
        var replies = ep.Process(cut, Port);
        AssertWellFormed(replies);
        Assert.Equal(Errno.EINVAL, Error(Assert.Single(replies)).Errno);
        Assert.Empty(ep.Ruleset.Tables);
    }

    [Fact]
    public void AttributeLengthPastItsNestIsEinvalWithTheOffset()
    {
        var ep = NewEndpoint();
        var msg = AddTable(2, "t");
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(20), 200); // NFTA_TABLE_NAME claims 200 bytes
        var replies = Messages(ep.Process(Batch(msg), Port));
        Assert.Equal((Errno.EINVAL, 20), Error(Assert.Single(replies).Bytes));
        Assert.Empty(ep.Ruleset.Tables);
    }

    [Fact]
    public void SeededMutationsNeverBreakTheEndpoint()
    {
        var rng = new Random(20261124);
        var ep = NewEndpoint();
        var seeds = new List<byte[]>
        {
            Batch(AddTable(2, "t"), AddChain(3, "t", "c", hook: (1, 0)), AddChain(4, "t", "d"),
                AddRule(5, "t", "c", w => { Counter(w, 1, 2); Verdict(w, -3, "d"); }),
                AddRule(6, "t", "d", w => Verdict(w, 0))),
            Dump(7, Ip), Dump(4), Dump(1), Msg(16, NlmFlags.Request, 1, 0),
            Batch(AddRule(5, "t", "c", w => Verdict(w, 1), flags: Create, position: 2)),
        };
        for (int i = 0; i < 4000; i++)
        {
            var b = (byte[])seeds[rng.Next(seeds.Count)].Clone();
            switch (rng.Next(5))
            {
                case 0: b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8)); break;
                case 1: b = b[..rng.Next(b.Length + 1)]; break;
                case 2: for (int k = 0; k < 8; k++) b[rng.Next(b.Length)] = (byte)rng.Next(256); break;
                case 3: BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(rng.Next(b.Length - 1)), (ushort)rng.Next(65536)); break;
                case 4: b = b.Concat(seeds[rng.Next(seeds.Count)]).ToArray(); break;
            }
            IReadOnlyList<byte[]> replies = ep.Process(b, Port);
            AssertWellFormed(replies);
            foreach (var d in replies)
                Assert.DoesNotContain("internal error", System.Text.Encoding.ASCII.GetString(d));
            if (i % 200 == 0) ep.Process(Msg(2, NlmFlags.Request, 1, 0), Port); // flush ruleset now and then
        }
        // still a working nf_tables afterwards
        ep.Process(Batch(Msg(2, NlmFlags.Request, 1, 0)), Port);
        Assert.Empty(ep.Process(Batch(AddTable(2, "after"), AddChain(3, "after", "c")), Port));
        Assert.Contains(ep.Ruleset.Tables, t => t.Name == "after");
    }
}
