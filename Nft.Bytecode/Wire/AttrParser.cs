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
    readonly (ushort Raw, int Start, int Len)[] _attrs; // Start/Len of the whole attribute within _buf
    readonly int _count;
    ulong _consumed;
    Dictionary<int, byte[]>? _strings; // attribute index -> payload of a non-canonical string

    public AttrParser(ReadOnlySpan<byte> payload, int baseOffset, ushort nestRawType = 0, int nestOffset = -1)
    {
        _buf = payload;
        _base = baseOffset;
        _nestRaw = nestRawType;
        _nestOffset = nestOffset;
        _consumed = 0;
        // counted first, then read into an array of that size: one allocation per parsed nest (every expression has one)
        int n = 0;
        for (var c = new AttributeReader(payload, baseOffset); c.TryRead(out _);) n++;
        _attrs = n == 0 ? [] : new (ushort, int, int)[n];
        var r = new AttributeReader(payload, baseOffset);
        for (int i = 0; i < n && r.TryRead(out var a); i++)
            _attrs[i] = (a.RawType, a.Offset - baseOffset, a.Length + NetlinkLimits.AttrHeaderSize);
        _count = n;
    }

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

    int FindLast(ushort type)
    {
        for (int i = _count - 1; i >= 0; i--)
            if ((_attrs[i].Raw & NlaFlags.TypeMask) == type) return i;
        return -1;
    }

    NetlinkAttribute At(int i)
    {
        var (raw, start, len) = _attrs[i];
        return new NetlinkAttribute(raw, _buf.Slice(start + NetlinkLimits.AttrHeaderSize, len - NetlinkLimits.AttrHeaderSize), _base + start);
    }

    public readonly bool Has(ushort type)
    {
        for (int i = _count - 1; i >= 0; i--)
            if ((_attrs[i].Raw & NlaFlags.TypeMask) == type) return true;
        return false;
    }

    /// <summary>Marks <paramref name="type"/> as modelled and returns its last occurrence.</summary>
    public bool TryGet(ushort type, out NetlinkAttribute a)
    {
        if (type < 64) _consumed |= 1UL << type;
        int i = FindLast(type);
        if (i < 0) { a = default; return false; }
        a = At(i);
        return true;
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
            (_strings ??= [])[FindLast(type)] = p.ToArray();
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
        var entries = new LayoutEntry[_count];
        for (int i = 0; i < _count; i++)
        {
            var (raw, start, len) = _attrs[i];
            ushort type = (ushort)(raw & NlaFlags.TypeMask);
            bool known = type < 64 && (_consumed & (1UL << type)) != 0 && LastIndexOf(type) == i;
            int padEnd = Math.Min(_buf.Length, start + NetlinkLimits.Align(len));
            var pad = _buf[(start + len)..padEnd];
            byte[]? padding = pad.IndexOfAnyExcept((byte)0) >= 0 ? pad.ToArray() : null;
            byte[]? str = known && _strings != null && _strings.TryGetValue(i, out var sb) ? sb : null;
            entries[i] = new LayoutEntry(raw, known ? null
                : _buf.Slice(start + NetlinkLimits.AttrHeaderSize, len - NetlinkLimits.AttrHeaderSize).ToArray(), padding, str);
        }
        return new AttributeLayout(_nestRaw, entries);
    }

    readonly int LastIndexOf(ushort type)
    {
        for (int i = _count - 1; i >= 0; i--)
            if ((_attrs[i].Raw & NlaFlags.TypeMask) == type) return i;
        return -1;
    }
}
