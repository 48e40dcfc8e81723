namespace Nft.Netlink;

/// <summary>
/// The attributes of one nest indexed by type, as the kernel's nla_parse builds them
/// (a repeated type: the last one wins; types above the maximum are ignored).
/// </summary>
public readonly ref struct AttributeTable
{
    readonly ReadOnlySpan<byte> _buf;
    readonly int _base;
    readonly (int Start, int Length, ushort RawType)[] _slots;

    AttributeTable(ReadOnlySpan<byte> buf, int baseOffset, (int, int, ushort)[] slots)
    {
        _buf = buf;
        _base = baseOffset;
        _slots = slots;
    }

    public static AttributeTable Parse(ReadOnlySpan<byte> buffer, int baseOffset, int maxType)
    {
        var slots = new (int, int, ushort)[maxType + 1];
        var r = new AttributeReader(buffer, baseOffset);
        while (r.TryRead(out var a))
        {
            if (a.Type > maxType) continue;
            slots[a.Type] = (a.Offset - baseOffset, a.Length + NetlinkLimits.AttrHeaderSize, a.RawType);
        }
        return new AttributeTable(buffer, baseOffset, slots);
    }

    public int MaxType => _slots.Length - 1;
    public bool Has(int type) => type < _slots.Length && _slots[type].Length != 0;

    public NetlinkAttribute this[int type]
    {
        get
        {
            if (!Has(type)) throw new InvalidOperationException($"attribute {type} absent; check Has first");
            var (start, len, raw) = _slots[type];
            return new NetlinkAttribute(raw, _buf.Slice(start + NetlinkLimits.AttrHeaderSize, len - NetlinkLimits.AttrHeaderSize), _base + start);
        }
    }

    public bool TryGet(int type, out NetlinkAttribute a)
    {
        if (Has(type)) { a = this[type]; return true; }
        a = default;
        return false;
    }
}
