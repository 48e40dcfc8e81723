using Nft.Netlink;

namespace Bpfilter.Daemon.NfTables;

/// <summary>
/// The attributes of one nest copied out of the request (header included), so they can be reordered
/// and rewritten into the kernel's dump layout after the request span is gone.
/// </summary>
internal sealed class AttrList
{
    public readonly List<(ushort Type, byte[] Payload, int Offset)> Items = new();

    public static AttrList Parse(ReadOnlySpan<byte> payload, int baseOffset)
    {
        var l = new AttrList();
        var r = new AttributeReader(payload, baseOffset);
        while (r.TryRead(out var a))
            l.Items.Add((a.Type, a.Payload.ToArray(), a.Offset)); // type without NLA_F_NESTED / NET_BYTEORDER
        return l;
    }

    public byte[]? Get(ushort type)
    {
        byte[]? found = null;
        foreach (var i in Items) if (i.Type == type) found = i.Payload; // last wins, as nla_parse
        return found;
    }

    public bool Has(ushort type) => Get(type) != null;

    public uint? U32Be(ushort type) => Get(type) is { Length: 4 } p ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(p) : null;
    public ulong? U64Be(ushort type) => Get(type) is { Length: 8 } p ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(p) : null;

    public string? Str(ushort type)
    {
        var p = Get(type);
        if (p == null) return null;
        int nul = Array.IndexOf(p, (byte)0);
        return NetlinkString.Decode(p.AsSpan(0, nul >= 0 ? nul : p.Length), type: type);
    }
}
