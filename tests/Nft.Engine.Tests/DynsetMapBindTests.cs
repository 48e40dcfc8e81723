using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// nft_dynset_init's data register checks, as the kernel answers (6.18, and its source): a data register
/// into a plain set or a verdict map is EOPNOTSUPP (nft's parser has no `add @vm { KEY : drop }` either), a
/// map written without one is EINVAL (measured: `delete @m { ip saddr }` on a map fails, `delete @m { ip saddr : 0x2 }` passes).
/// </summary>
public class DynsetMapBindTests
{
    const uint VerdictType = 0xffffff00;

    /// <summary>NEWSET of an ipv4_addr set, or a map (NFT_SET_MAP) with data of <paramref name="dataType"/>.</summary>
    static byte[] NewSet(uint seq, string name, uint? dataType, uint dataLen = 4) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, name);
        w.PutU32Be(3, dataType is null ? 0u : 0x8u);
        w.PutU32Be(4, 7);
        w.PutU32Be(5, 4);
        if (dataType is uint dt)
        {
            w.PutU32Be(6, dt);
            w.PutU32Be(7, dataLen);
        }
        w.PutU32Be(10, seq);
    });

    /// <summary>`add @set { reg 1 [: reg 2] }`: a rule of one dynset expression.</summary>
    static byte[] Dynset(uint seq, string set, uint? sregData) => AddRule(seq, "t", "c", w =>
    {
        var e = w.BeginNested(1);
        w.PutString(1, "dynset");
        var d = w.BeginNested(2);
        w.PutString(1, set);
        w.PutU32Be(3, 0); // NFT_DYNSET_OP_ADD
        w.PutU32Be(4, 1);
        if (sregData is uint r) w.PutU32Be(5, r);
        w.EndNested(d);
        w.EndNested(e);
    });

    static int ErrnoOf(string set, uint? sregData)
    {
        var ep = NewEndpoint();
        var replies = Messages(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), NewSet(4, "s", null),
            NewSet(5, "m", 7), NewSet(6, "vm", VerdictType, 16), Dynset(7, set, sregData)), Port));
        return replies.Count == 0 ? 0 : Error(Assert.Single(replies).Bytes).Errno;
    }

    [Fact]
    public void DataIntoAMapOfValuesIsAccepted() => Assert.Equal(0, ErrnoOf("m", 2));

    [Fact]
    public void AMapWrittenWithoutDataIsInvalid() => Assert.Equal(Errno.EINVAL, ErrnoOf("m", null));

    [Fact]
    public void DataIntoAVerdictMapIsNotSupported() => Assert.Equal(Errno.EOPNOTSUPP, ErrnoOf("vm", 2));

    [Fact]
    public void DataIntoAPlainSetIsNotSupported() => Assert.Equal(Errno.EOPNOTSUPP, ErrnoOf("s", 2));

    [Fact]
    public void APlainSetWithoutDataIsAccepted() => Assert.Equal(0, ErrnoOf("s", null));
}
