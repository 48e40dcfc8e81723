using Nft.Netlink;

namespace Nft.Bytecode.Wire;

/// <summary>
/// Reads the attributes of one nest (or of a message after nfgenmsg) into typed values while
/// recording their wire layout. Lookups follow nla_parse: for a repeated type the last one wins.
/// Every getter validates lengths and throws <see cref="NetlinkException"/> with the attribute's
/// absolute offset; an attribute no getter asked for stays in the layout as unknown bytes.
/// </summary>
public ref struct AttrParser
{
    readonly ReadOnlySpan<byte> _buf;
    readonly int _base;
    readonly ushort _nestRaw;
    readonly int _nestOffset;
    readonly int _count;
    ulong _consumed;
    Dictionary<int, byte[]>? _strings; // attribute index -> payload of a non-canonical string
    // the first AttrStarts.Max attributes' starts (relative to _buf) and raw types: a nest with no more is not walked again
    AttrStarts _starts;
    AttrRaws _raws;

    public AttrParser(ReadOnlySpan<byte> payload, int baseOffset, ushort nestRawType = 0, int nestOffset = -1)
    {
        _buf = payload;
        _base = baseOffset;
        _nestRaw = nestRawType;
        _nestOffset = nestOffset;
        _consumed = 0;
        // nests hold a handful of attributes: lookups walk them again instead of indexing an array, so parsing a
        // nest allocates nothing (every expression of every rule is one or more nests)
        int n = 0;
        for (var c = new AttributeReader(payload, baseOffset); c.TryRead(out var a); n++)
            if (n < AttrStarts.Max)
            {
                _starts[n] = a.Offset - baseOffset;
                _raws[n] = a.RawType;
            }
        _count = n;
    }

    /// <summary>Whether every attribute of the nest is in <see cref="_starts"/>.</summary>
    readonly bool Indexed => _count <= AttrStarts.Max;

    /// <summary>Parses the contents of a nest attribute.</summary>
    public static AttrParser Of(NetlinkAttribute nest) => new(nest.Payload, nest.PayloadOffset, nest.RawType, nest.Offset);

    /// <summary>Parses the attributes of an nf_tables message (after nlmsghdr and nfgenmsg).</summary>
    public static AttrParser Of(NetlinkMessage msg)
    {
        _ = msg.GenMsg; // EINVAL when too short
        int start = NlMsgHeader.Size + NfGenMsg.Size;
        return new AttrParser(msg.Bytes[start..], start);
    }

    /// <summary>Offset of the nest itself (or -1 at message level), for errors about missing attributes.</summary>
    public readonly int NestOffset => _nestOffset;
    public readonly int Count => _count;

    /// <summary>The index of the last attribute of <paramref name="type"/> (-1 when none) and that attribute.</summary>
    readonly int FindLast(ushort type, out NetlinkAttribute last)
    {
        last = default;
        if (Indexed)
        {
            int at = LastIndexOf(type);
            // read again from its start: the walk in the constructor checked its length
            if (at >= 0) new AttributeReader(_buf[_starts[at]..], _base + _starts[at]).TryRead(out last);
            return at;
        }
        int found = -1;
        var r = new AttributeReader(_buf, _base);
        for (int i = 0; i < _count && r.TryRead(out var a); i++)
            if ((a.RawType & NlaFlags.TypeMask) == type)
            {
                found = i;
                last = a;
            }
        return found;
    }

    /// <summary>The index of the last attribute of <paramref name="type"/> among the indexed ones (-1 when none).</summary>
    readonly int LastIndexOf(ushort type)
    {
        for (int i = _count - 1; i >= 0; i--)
            if ((_raws[i] & NlaFlags.TypeMask) == type) return i;
        return -1;
    }

    public readonly bool Has(ushort type) => FindLast(type, out _) >= 0;

    /// <summary>Marks <paramref name="type"/> as modelled and returns its last occurrence.</summary>
    public bool TryGet(ushort type, out NetlinkAttribute a)
    {
        if (type < 64) _consumed |= 1UL << type;
        return FindLast(type, out a) >= 0;
    }

    public NetlinkException Missing(string what) =>
        new(Errno.EINVAL, $"missing {what}", _nestOffset);

    public uint? U32Be(ushort type) => TryGet(type, out var a) ? a.U32Be() : null;
    public int? S32Be(ushort type) => TryGet(type, out var a) ? a.S32Be() : null;
    public ulong? U64Be(ushort type) => TryGet(type, out var a) ? a.U64Be() : null;
    public ushort? U16Be(ushort type) => TryGet(type, out var a) ? a.U16Be() : null;
    public byte? U8(ushort type) => TryGet(type, out var a) ? a.U8() : null;

    public string? Str(ushort type, int maxLen)
    {
        if (!TryGet(type, out var a)) return null;
        string s = a.String(maxLen);
        // canonical: the UTF-8 bytes and one NUL, as nla_put_string / mnl_attr_put_strz write them
        var p = a.Payload;
        bool canonical = p.Length == System.Text.Encoding.UTF8.GetByteCount(s) + 1 && p[^1] == 0;
        if (!canonical)
            (_strings ??= [])[FindLast(type, out _)] = p.ToArray();
        return s;
    }

    /// <summary>A binary attribute of at most <paramref name="maxLen"/> bytes (ERANGE beyond, as NLA_BINARY).</summary>
    public byte[]? Bytes(ushort type, int maxLen = int.MaxValue)
    {
        if (!TryGet(type, out var a)) return null;
        if (a.Length > maxLen)
            throw new NetlinkException(Errno.ERANGE, $"attribute {type}: {a.Length} bytes exceed {maxLen}", a.Offset);
        return a.Payload.ToArray();
    }

    public uint ReqU32Be(ushort type, string name) => U32Be(type) ?? throw Missing(name);
    public string ReqStr(ushort type, int maxLen, string name) => Str(type, maxLen) ?? throw Missing(name);

    /// <summary>The layout seen so far: call after every getter.</summary>
    public readonly AttributeLayout Layout()
    {
        // the usual nest (every attribute modelled, canonical strings, zero padding) is the same layout in every
        // rule that has it: shared, not built per nest
        if (_strings == null && _count <= SharedLayouts.MaxEntries)
        {
            Span<ushort> raws = stackalloc ushort[SharedLayouts.MaxEntries];
            bool plain = true;
            var r = new AttributeReader(_buf, _base);
            for (int i = 0; i < _count && plain && r.TryRead(out var a); i++)
            {
                raws[i] = a.RawType;
                int start = a.Offset - _base, len = a.Length + NetlinkLimits.AttrHeaderSize;
                plain = IsKnown(a.RawType, i) && _buf[(start + len)..Math.Min(_buf.Length, start + NetlinkLimits.Align(len))].IndexOfAnyExcept((byte)0) < 0;
            }
            if (plain) return SharedLayouts.Get(_nestRaw, raws[.._count]);
        }
        var entries = new LayoutEntry[_count];
        var rd = new AttributeReader(_buf, _base);
        for (int i = 0; i < _count && rd.TryRead(out var a); i++)
        {
            ushort raw = a.RawType;
            int start = a.Offset - _base, len = a.Length + NetlinkLimits.AttrHeaderSize;
            bool known = IsKnown(raw, i);
            int padEnd = Math.Min(_buf.Length, start + NetlinkLimits.Align(len));
            var pad = _buf[(start + len)..padEnd];
            byte[]? padding = pad.IndexOfAnyExcept((byte)0) >= 0 ? pad.ToArray() : null;
            byte[]? str = known && _strings != null && _strings.TryGetValue(i, out var sb) ? sb : null;
            entries[i] = new LayoutEntry(raw, known ? null : a.Payload.ToArray(), padding, str);
        }
        return new AttributeLayout(_nestRaw, entries);
    }

    /// <summary>Whether the attribute at <paramref name="index"/> is the one a getter read (the last of its type).</summary>
    readonly bool IsKnown(ushort raw, int index)
    {
        ushort type = (ushort)(raw & NlaFlags.TypeMask);
        return type < 64 && (_consumed & (1UL << type)) != 0 && (Indexed ? LastIndexOf(type) : FindLast(type, out _)) == index;
    }
}
