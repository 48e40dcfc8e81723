using System.Buffers.Binary;
using System.Text;

namespace Nft.Netlink;

/// <summary>
/// One attribute (struct nlattr) inside a message. <see cref="Offset"/> is absolute: from the start
/// of the enclosing nlmsghdr, which is what NLMSGERR_ATTR_OFFS reports.
/// </summary>
public readonly ref struct NetlinkAttribute
{
    public readonly ushort RawType;
    public readonly ReadOnlySpan<byte> Payload;
    public readonly int Offset;

    public NetlinkAttribute(ushort rawType, ReadOnlySpan<byte> payload, int offset)
    {
        RawType = rawType;
        Payload = payload;
        Offset = offset;
    }

    public ushort Type => (ushort)(RawType & NlaFlags.TypeMask);
    public bool IsNested => (RawType & NlaFlags.Nested) != 0;
    public int PayloadOffset => Offset + NetlinkLimits.AttrHeaderSize;
    public int Length => Payload.Length;

    NetlinkException Bad(string what) =>
        new(Errno.EINVAL, $"attribute {Type}: {what}", Offset);

    ReadOnlySpan<byte> Exactly(int n) =>
        Payload.Length == n ? Payload : throw Bad($"expected {n} bytes, got {Payload.Length}");

    public byte U8() => Exactly(1)[0];
    public ushort U16Be() => BinaryPrimitives.ReadUInt16BigEndian(Exactly(2));
    public uint U32Be() => BinaryPrimitives.ReadUInt32BigEndian(Exactly(4));
    public ulong U64Be() => BinaryPrimitives.ReadUInt64BigEndian(Exactly(8));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Exactly(4));
    public int S32Be() => (int)U32Be();

    /// <summary>
    /// NLA_STRING / NLA_NUL_STRING: bytes up to the first NUL; at most <paramref name="maxLen"/> bytes;
    /// EINVAL if not UTF-8 (<see cref="NetlinkString"/>).
    /// </summary>
    public string String(int maxLen = 256)
    {
        var p = Payload;
        int nul = p.IndexOf((byte)0);
        if (nul >= 0) p = p[..nul];
        if (p.Length > maxLen) throw new NetlinkException(Errno.ERANGE, $"attribute {Type}: string longer than {maxLen}", Offset);
        return NetlinkString.Decode(p, Offset, Type);
    }

    public AttributeReader Nested() => new(Payload, PayloadOffset);
    public AttributeTable Table(int maxType) => AttributeTable.Parse(Payload, PayloadOffset, maxType);
    /// <summary>The nest's table in caller-provided slots (see <see cref="AttributeTable.Slot"/>).</summary>
    public AttributeTable Table(Span<AttributeTable.Slot> slots) => AttributeTable.Parse(Payload, PayloadOffset, slots);
}
