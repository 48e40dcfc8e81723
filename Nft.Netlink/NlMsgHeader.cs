using System.Buffers.Binary;

namespace Nft.Netlink;

/// <summary>struct nlmsghdr, host byte order (little-endian on every target we run on).</summary>
public readonly record struct NlMsgHeader(uint Length, ushort Type, NlmFlags Flags, uint Seq, uint Pid)
{
    public const int Size = NetlinkLimits.HeaderSize;

    public static NlMsgHeader Read(ReadOnlySpan<byte> s) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(s),
        BinaryPrimitives.ReadUInt16LittleEndian(s[4..]),
        (NlmFlags)BinaryPrimitives.ReadUInt16LittleEndian(s[6..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[12..]));

    public void Write(Span<byte> s)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(s, Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], (ushort)Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], Seq);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], Pid);
    }

    public bool Has(NlmFlags f) => (Flags & f) == f;
}
