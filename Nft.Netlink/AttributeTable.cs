namespace Nft.Netlink;

/// <summary>
/// The attributes of one nest indexed by type, as the kernel's nla_parse builds them
/// (a repeated type: the last one wins; types above the maximum are ignored).
/// </summary>
public readonly ref struct AttributeTable
{
    /// <summary>
    /// Where one attribute of a table lies. Callers only provide room for them: a table parsed into
    /// caller-provided slots (<c>stackalloc Slot[max + 1]</c>) allocates nothing, which matters for the
    /// per-element tables of a NEWSETELEM of a million elements.
    /// </summary>
    public struct Slot
    {
        internal int Start;
        internal int Length;
        internal ushort RawType;
    }

    readonly ReadOnlySpan<byte> _buf;
    readonly int _base;
    readonly ReadOnlySpan<Slot> _slots;

    AttributeTable(ReadOnlySpan<byte> buf, int baseOffset, ReadOnlySpan<Slot> slots)
    {
        _buf = buf;
        _base = baseOffset;
        _slots = slots;
    }

    public static AttributeTable Parse(ReadOnlySpan<byte> buffer, int baseOffset, int maxType) =>
        Parse(buffer, baseOffset, new Slot[maxType + 1]);

    /// <summary>Parses into <paramref name="slots"/> (one per type 0..max, cleared first); the table lives as long as they do.</summary>
    public static AttributeTable Parse(ReadOnlySpan<byte> buffer, int baseOffset, Span<Slot> slots)
    {
        slots.Clear();
        int maxType = slots.Length - 1;
        var r = new AttributeReader(buffer, baseOffset);
        while (r.TryRead(out var a))
        {
            if (a.Type > maxType) continue;
            slots[a.Type] = new Slot { Start = a.Offset - baseOffset, Length = a.Length + NetlinkLimits.AttrHeaderSize, RawType = a.RawType };
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
            var s = _slots[type];
            return new NetlinkAttribute(s.RawType, _buf.Slice(s.Start + NetlinkLimits.AttrHeaderSize, s.Length - NetlinkLimits.AttrHeaderSize), _base + s.Start);
        }
    }

    public bool TryGet(int type, out NetlinkAttribute a)
    {
        if (Has(type)) { a = this[type]; return true; }
        a = default;
        return false;
    }
}
