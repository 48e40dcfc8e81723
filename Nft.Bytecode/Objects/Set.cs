using Nft.Bytecode.Expressions;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWSET / GETSET / DELSET contents: sets and maps (a map has NFT_SET_MAP and data type/length).</summary>
public sealed record Set : IAttributeSource
{
    public byte Family { get; init; }
    public string? Table { get; init; }
    public string? Name { get; init; }
    public uint? Flags { get; init; }
    public uint? KeyType { get; init; }
    public uint? KeyLen { get; init; }
    public uint? DataType { get; init; }
    public uint? DataLen { get; init; }
    public uint? Policy { get; init; }
    public SetDesc? Desc { get; init; }
    public uint? Id { get; init; }
    /// <summary>Default element timeout in milliseconds.</summary>
    public ulong? Timeout { get; init; }
    public uint? GcInterval { get; init; }
    public byte[]? UserData { get; init; }
    public uint? ObjType { get; init; }
    public ulong? Handle { get; init; }
    public Expression? Expr { get; init; }
    public IReadOnlyList<Expression>? Expressions { get; init; }
    /// <summary>NFTA_SET_TYPE (kernel 6.16+ dumps): the kernel's name for the set backend; informational.</summary>
    public string? Backend { get; init; }
    /// <summary>NFTA_SET_COUNT (kernel 6.16+ dumps): number of elements.</summary>
    public uint? Count { get; init; }
    public AttributeLayout? Layout { get; init; }

    public NftSetFlags SetFlags => (NftSetFlags)(Flags ?? 0);

    static readonly ushort[] KernelOrder = [NftaSet.Table, NftaSet.Name, NftaSet.Handle, NftaSet.Flags, NftaSet.KeyType,
        NftaSet.KeyLen, NftaSet.DataType, NftaSet.DataLen, NftaSet.ObjType, NftaSet.Timeout, NftaSet.GcInterval,
        NftaSet.Policy, NftaSet.UserData, NftaSet.Desc, NftaSet.Type, NftaSet.Count, NftaSet.Expr, NftaSet.Expressions, NftaSet.Id];

    public static Set Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        var s = new Set
        {
            Family = msg.GenMsg.Family,
            Table = p.Str(NftaSet.Table, NftLimits.TableNameMax),
            Name = p.Str(NftaSet.Name, NftLimits.SetNameMax),
            Flags = p.U32Be(NftaSet.Flags),
            KeyType = p.U32Be(NftaSet.KeyType),
            KeyLen = CheckLen(ref p, NftaSet.KeyLen),
            DataType = p.U32Be(NftaSet.DataType),
            DataLen = p.U32Be(NftaSet.DataLen),
            Policy = p.U32Be(NftaSet.Policy),
            Desc = p.TryGet(NftaSet.Desc, out var d) ? SetDesc.Decode(d) : null,
            Id = p.U32Be(NftaSet.Id),
            Timeout = p.U64Be(NftaSet.Timeout),
            GcInterval = p.U32Be(NftaSet.GcInterval),
            UserData = p.Bytes(NftaSet.UserData, NftLimits.UserDataMaxLen),
            ObjType = p.U32Be(NftaSet.ObjType),
            Handle = p.U64Be(NftaSet.Handle),
            Expr = p.TryGet(NftaSet.Expr, out var e) ? ExpressionCodec.Decode(e) : null,
            Expressions = p.TryGet(NftaSet.Expressions, out var es) ? AttrLists.ReadExpressions(es, NftLimits.SetExprMax) : null,
            Backend = p.Str(NftaSet.Type, NftLimits.NameMaxLen - 1),
            Count = p.U32Be(NftaSet.Count),
        };
        // nf_tables_newset checks the data length of maps that carry values (not verdicts)
        if (s.SetFlags.HasFlag(NftSetFlags.Map) && s.DataType != VerdictDataType && s.DataLen is { } dl && (dl == 0 || dl > NftLimits.DataValueMaxLen)
            && p.TryGet(NftaSet.DataLen, out var dla))
            throw new NetlinkException(Errno.EINVAL, $"set data length {dl} out of range", dla.Offset);
        return s with { Layout = p.Layout() };
    }

    /// <summary>NFT_DATA_VERDICT: the data type of verdict maps.</summary>
    public const uint VerdictDataType = 0xffffff00;

    /// <summary>Key and data lengths: 1..NFT_DATA_VALUE_MAXLEN, else EINVAL as nf_tables_newset answers.</summary>
    static uint? CheckLen(ref AttrParser p, ushort type)
    {
        if (!p.TryGet(type, out var a)) return null;
        uint v = a.U32Be();
        if (v == 0 || v > NftLimits.DataValueMaxLen)
            throw new NetlinkException(Errno.EINVAL, $"set key/data length {v} out of range", a.Offset);
        return v;
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaSet.Table when Table != null: AttrWriter.PutString(w, raw, Table); return true;
            case NftaSet.Name when Name != null: AttrWriter.PutString(w, raw, Name); return true;
            case NftaSet.Flags when Flags != null: w.PutU32Be(raw, Flags.Value); return true;
            case NftaSet.KeyType when KeyType != null: w.PutU32Be(raw, KeyType.Value); return true;
            case NftaSet.KeyLen when KeyLen != null: w.PutU32Be(raw, KeyLen.Value); return true;
            case NftaSet.DataType when DataType != null: w.PutU32Be(raw, DataType.Value); return true;
            case NftaSet.DataLen when DataLen != null: w.PutU32Be(raw, DataLen.Value); return true;
            case NftaSet.Policy when Policy != null: w.PutU32Be(raw, Policy.Value); return true;
            case NftaSet.Desc when Desc != null: Desc.Encode(w, raw, f); return true;
            case NftaSet.Id when Id != null: w.PutU32Be(raw, Id.Value); return true;
            case NftaSet.Timeout when Timeout != null: w.PutU64Be(raw, Timeout.Value); return true;
            case NftaSet.GcInterval when GcInterval != null: w.PutU32Be(raw, GcInterval.Value); return true;
            case NftaSet.UserData when UserData != null: w.PutRaw(raw, UserData); return true;
            case NftaSet.ObjType when ObjType != null: w.PutU32Be(raw, ObjType.Value); return true;
            case NftaSet.Handle when Handle != null: w.PutU64Be(raw, Handle.Value); return true;
            case NftaSet.Expr when Expr != null: ExpressionCodec.Encode(w, Expr, raw, f); return true;
            case NftaSet.Expressions when Expressions != null: AttrLists.Expressions(w, raw, Expressions, f); return true;
            case NftaSet.Type when Backend != null: AttrWriter.PutString(w, raw, Backend); return true;
            case NftaSet.Count when Count != null: w.PutU32Be(raw, Count.Value); return true;
            default: return false;
        }
    }

    public bool Equals(Set? o) => o is not null && Family == o.Family && Table == o.Table && Name == o.Name && Flags == o.Flags
        && KeyType == o.KeyType && KeyLen == o.KeyLen && DataType == o.DataType && DataLen == o.DataLen && Policy == o.Policy
        && Equals(Desc, o.Desc) && Id == o.Id && Timeout == o.Timeout && GcInterval == o.GcInterval && Bin.Eq(UserData, o.UserData)
        && ObjType == o.ObjType && Handle == o.Handle && Backend == o.Backend && Count == o.Count && Equals(Expr, o.Expr) && Bin.Eq(Expressions, o.Expressions)
        && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Family, Table, Name, Handle);
}

/// <summary>NFTA_SET_DESC: expected size and, for concatenations, the length of each field.</summary>
public sealed record SetDesc(uint? Size, IReadOnlyList<uint>? ConcatFieldLens = null) : IAttributeSource
{
    public AttributeLayout? Layout { get; init; }
    static readonly ushort[] KernelOrder = [NftaSetDesc.Size, NftaSetDesc.Concat];

    public static SetDesc Decode(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        uint? size = p.U32Be(NftaSetDesc.Size);
        List<uint>? fields = null;
        if (p.TryGet(NftaSetDesc.Concat, out var c))
        {
            fields = [];
            var r = c.Nested();
            while (r.TryRead(out var elem))
            {
                if (elem.Type != NftaList.Elem)
                    throw new NetlinkException(Errno.EINVAL, $"unexpected attribute {elem.Type} in concat list", elem.Offset);
                if (fields.Count == NftLimits.SetConcatMaxFields)
                    throw new NetlinkException(Errno.E2BIG, "too many concatenation fields", elem.Offset);
                var fp = AttrParser.Of(elem);
                if (!fp.TryGet(NftaSetField.Len, out var len))
                    throw new NetlinkException(Errno.EINVAL, "concatenation field without length", elem.Offset);
                uint l = len.U32Be();
                if (l == 0) throw new NetlinkException(Errno.EINVAL, "zero-length concatenation field", len.Offset);
                if (l > NftLimits.DataValueMaxLen) throw new NetlinkException(Errno.E2BIG, $"concatenation field of {l} bytes", len.Offset);
                fields.Add(l);
            }
        }
        return new SetDesc(size, fields) { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, ushort type, WireFormat f) =>
        AttrLists.Nested(w, AttrWriter.NestType(Layout, type, f), Layout, KernelOrder, this, f);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaSetDesc.Size when Size != null: w.PutU32Be(raw, Size.Value); return true;
            case NftaSetDesc.Concat when ConcatFieldLens != null:
                var t = AttrWriter.BeginNest(w, raw);
                ushort item = AttrLists.ItemType(raw, NftaList.Elem);
                foreach (uint len in ConcatFieldLens)
                {
                    var e = AttrWriter.BeginNest(w, item);
                    w.PutU32Be(NftaSetField.Len, len);
                    w.EndNested(e);
                }
                w.EndNested(t);
                return true;
            default: return false;
        }
    }

    public bool Equals(SetDesc? o) => o is not null && Size == o.Size && Bin.Eq(ConcatFieldLens, o.ConcatFieldLens) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Size, ConcatFieldLens?.Count);
}
