using System.Buffers.Binary;

namespace Nft.Netlink;

/// <summary>struct nfgenmsg: family, version, and res_id (network order; the generation's low 16 bits in replies).</summary>
public readonly record struct NfGenMsg(byte Family, byte Version, ushort ResId)
{
    public const int Size = NetlinkLimits.NfGenMsgSize;

    public static NfGenMsg Read(ReadOnlySpan<byte> s) =>
        new(s[0], s[1], BinaryPrimitives.ReadUInt16BigEndian(s[2..]));

    public void Write(Span<byte> s)
    {
        s[0] = Family;
        s[1] = Version;
        BinaryPrimitives.WriteUInt16BigEndian(s[2..], ResId);
    }
}
