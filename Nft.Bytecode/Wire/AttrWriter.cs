using Nft.Netlink;

namespace Nft.Bytecode.Wire;

/// <summary>Implemented by records that write their attributes one type at a time.</summary>
internal interface IAttributeSource
{
    /// <summary>Writes the attribute of <paramref name="rawType"/>'s type if the record holds it; false if absent.</summary>
    bool WriteAttribute(NetlinkWriter w, AttrSlot slot, WireFormat format);
}

/// <summary>Writes a record's attributes in its decoded layout, else in the kernel's order.</summary>
internal static class AttrWriter
{
    public static void Write<T>(NetlinkWriter w, AttributeLayout? layout, ReadOnlySpan<ushort> kernelOrder, T src, WireFormat format)
        where T : IAttributeSource
    {
        ulong written = 0;
        if (layout != null && format == WireFormat.AsDecoded)
        {
            foreach (var e in layout.Span)
            {
                int start = w.Length;
                if (!e.IsKnown)
                {
                    w.PutRaw(e.RawType, e.Unknown);
                }
                else
                {
                    int t = e.RawType & NlaFlags.TypeMask;
                    if (t < 64 && (written & (1UL << t)) != 0) continue;
                    if (!src.WriteAttribute(w, new AttrSlot(e.RawType, e), format)) continue;
                    if (t < 64) written |= 1UL << t;
                }
                if (e.Padding != null) ReplayPadding(w, start, e.Padding);
            }
        }
        foreach (ushort raw in kernelOrder)
        {
            int t = raw & NlaFlags.TypeMask;
            if ((written & (1UL << t)) != 0) continue;
            if (src.WriteAttribute(w, new AttrSlot(raw), format)) written |= 1UL << t;
        }
    }

    /// <summary>
    /// Raw type to use for a nest: the decoded one, else the kernel's (which sets no NLA_F_NESTED
    /// on nf_tables nests: they are started with nla_nest_start_noflag).
    /// </summary>
    public static ushort NestType(AttributeLayout? layout, ushort type, WireFormat format) =>
        format == WireFormat.AsDecoded && layout != null && layout.NestRawType != 0 ? layout.NestRawType : type;

    public static NetlinkWriter.Token BeginNest(NetlinkWriter w, ushort rawType) => w.BeginNestedRaw(rawType);

    /// <summary>Restores non-zero padding bytes after the attribute written at <paramref name="start"/> (same length only).</summary>
    static void ReplayPadding(NetlinkWriter w, int start, byte[] padding)
    {
        var span = w.WrittenSpan;
        if (span.Length - start < NetlinkLimits.AttrHeaderSize) return;
        int len = span[start] | span[start + 1] << 8;
        int end = start + len;
        if (end + padding.Length > span.Length || NetlinkLimits.Align(end) - end != padding.Length) return;
        w.Overwrite(end, padding);
    }

    /// <summary>Writes a string attribute: as decoded (e.g. without its NUL) while unchanged, else NUL-terminated.</summary>
    public static void PutString(NetlinkWriter w, AttrSlot slot, string value)
    {
        if (slot.Entry?.StringBytes is { } raw && DecodedString(raw) == value)
            w.PutRaw(slot.RawType, raw);
        else
            w.PutString(slot.RawType, value);
    }

    static string DecodedString(ReadOnlySpan<byte> p)
    {
        int nul = p.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(nul >= 0 ? p[..nul] : p);
    }
}

/// <summary>Helpers shared by the object and expression records.</summary>
internal static class AttrLists
{
    /// <summary>Writes a nest whose contents come from <paramref name="src"/>.</summary>
    public static void Nested<T>(NetlinkWriter w, ushort raw, AttributeLayout? layout, ReadOnlySpan<ushort> order, T src, WireFormat f)
        where T : IAttributeSource
    {
        var t = AttrWriter.BeginNest(w, raw);
        AttrWriter.Write(w, layout, order, src, f);
        w.EndNested(t);
    }

    /// <summary>Items of a list nest inherit its NLA_F_NESTED flag (nft sets it everywhere, the kernel nowhere).</summary>
    public static ushort ItemType(ushort listRaw, ushort itemType) => (ushort)(itemType | (listRaw & NlaFlags.Nested));

    /// <summary>NFTA_DEVICE_NAME strings inside a devices nest.</summary>
    public static void Devices(NetlinkWriter w, ushort raw, IReadOnlyList<string> devices)
    {
        var t = AttrWriter.BeginNest(w, raw);
        foreach (var d in devices) w.PutString(NftaDevice.Name, d);
        w.EndNested(t);
    }

    public static IReadOnlyList<string> ReadDevices(NetlinkAttribute nest)
    {
        var list = new List<string>();
        var r = nest.Nested();
        while (r.TryRead(out var a))
        {
            if (a.Type != NftaDevice.Name)
                throw new NetlinkException(Errno.EINVAL, $"unexpected attribute {a.Type} in device list", a.Offset);
            if (list.Count == NftLimits.HookDevicesMax)
                throw new NetlinkException(Errno.E2BIG, "too many devices", a.Offset);
            string name = a.String(NftLimits.IfNameMax);
            if (name.Length == 0) throw new NetlinkException(Errno.EINVAL, "empty device name", a.Offset);
            list.Add(name);
        }
        return list;
    }

    /// <summary>Expressions inside an NFTA_*_EXPRESSIONS list (NFTA_LIST_ELEM items), at most <paramref name="max"/>.</summary>
    public static IReadOnlyList<Nft.Bytecode.Expressions.Expression> ReadExpressions(NetlinkAttribute nest, int max)
    {
        var list = new List<Nft.Bytecode.Expressions.Expression>();
        var r = nest.Nested();
        while (r.TryRead(out var a))
        {
            if (a.Type != NftaList.Elem)
                throw new NetlinkException(Errno.EINVAL, $"unexpected attribute {a.Type} in expression list", a.Offset);
            if (list.Count == max)
                throw new NetlinkException(max == NftLimits.RuleMaxExprs ? Errno.EINVAL : Errno.E2BIG, $"more than {max} expressions", a.Offset);
            try
            {
                list.Add(Nft.Bytecode.Expressions.ExpressionCodec.Decode(a));
            }
            catch (NetlinkException e) when (e.Offset != a.Offset)
            {
                // nf_tables blames the whole list element for anything wrong inside it
                throw new NetlinkException(e.Errno, e.ExtAck, a.Offset);
            }
        }
        return list;
    }

    public static void Expressions(NetlinkWriter w, ushort raw, IReadOnlyList<Nft.Bytecode.Expressions.Expression> exprs, WireFormat f)
    {
        var t = AttrWriter.BeginNest(w, raw);
        for (int i = 0; i < exprs.Count; i++) global::Nft.Bytecode.Expressions.ExpressionCodec.Encode(w, exprs[i], ItemType(raw, NftaList.Elem), f);
        w.EndNested(t);
    }
}
