using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>
/// One set element (an NFTA_LIST_ELEM of NFTA_SET_ELEM_LIST_ELEMENTS): key, optional key end
/// (concatenated ranges), data or verdict for maps, flags (interval end, catch-all), timeouts.
/// </summary>
public sealed record SetElement : IAttributeSource
{
    public NftData? Key { get; init; }
    public NftData? KeyEnd { get; init; }
    public NftData? Data { get; init; }
    public uint? Flags { get; init; }
    /// <summary>Milliseconds.</summary>
    public ulong? Timeout { get; init; }
    /// <summary>Milliseconds left, as dumped.</summary>
    public ulong? Expiration { get; init; }
    public byte[]? UserData { get; init; }
    public Expression? Expr { get; init; }
    public string? ObjRef { get; init; }
    public IReadOnlyList<Expression>? Expressions { get; init; }
    public AttributeLayout? Layout { get; init; }

    public NftSetElemFlags ElemFlags => (NftSetElemFlags)(Flags ?? 0);
    public string? Comment => UserData is null ? null : Objects.UserData.String(UserData, Objects.UserData.SetElemComment);

    static readonly ushort[] KernelOrder = [NftaSetElem.Key, NftaSetElem.KeyEnd, NftaSetElem.Data, NftaSetElem.Expr,
        NftaSetElem.Expressions, NftaSetElem.ObjRef, NftaSetElem.Flags, NftaSetElem.Timeout, NftaSetElem.Expiration,
        NftaSetElem.UserData];

    public static SetElement Decode(NetlinkAttribute nest)
    {
        var p = AttrParser.Of(nest);
        var e = new SetElement
        {
            Key = p.TryGet(NftaSetElem.Key, out var k) ? NftDataCodec.Decode(k) : null,
            KeyEnd = p.TryGet(NftaSetElem.KeyEnd, out var ke) ? NftDataCodec.Decode(ke) : null,
            Data = p.TryGet(NftaSetElem.Data, out var d) ? NftDataCodec.Decode(d) : null,
            Flags = p.U32Be(NftaSetElem.Flags),
            Timeout = p.U64Be(NftaSetElem.Timeout),
            Expiration = p.U64Be(NftaSetElem.Expiration),
            UserData = p.Bytes(NftaSetElem.UserData, NftLimits.UserDataMaxLen),
            Expr = p.TryGet(NftaSetElem.Expr, out var x) ? ExpressionCodec.Decode(x) : null,
            ObjRef = p.Str(NftaSetElem.ObjRef, NftLimits.ObjNameMax),
            Expressions = p.TryGet(NftaSetElem.Expressions, out var xs) ? AttrLists.ReadExpressions(xs, NftLimits.SetExprMax) : null,
        };
        return e with { Layout = p.Layout() };
    }

    /// <summary>Writes the element as a nest of <paramref name="type"/> (NFTA_LIST_ELEM).</summary>
    public void Encode(NetlinkWriter w, ushort type = NftaList.Elem, WireFormat format = WireFormat.AsDecoded) =>
        AttrLists.Nested(w, AttrWriter.NestType(Layout, type, format), Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaSetElem.Key when Key != null: NftDataCodec.Encode(w, raw, Key, f); return true;
            case NftaSetElem.KeyEnd when KeyEnd != null: NftDataCodec.Encode(w, raw, KeyEnd, f); return true;
            case NftaSetElem.Data when Data != null: NftDataCodec.Encode(w, raw, Data, f); return true;
            case NftaSetElem.Flags when Flags != null: w.PutU32Be(raw, Flags.Value); return true;
            case NftaSetElem.Timeout when Timeout != null: w.PutU64Be(raw, Timeout.Value); return true;
            case NftaSetElem.Expiration when Expiration != null: w.PutU64Be(raw, Expiration.Value); return true;
            case NftaSetElem.UserData when UserData != null: w.PutRaw(raw, UserData); return true;
            case NftaSetElem.Expr when Expr != null: ExpressionCodec.Encode(w, Expr, raw, f); return true;
            case NftaSetElem.ObjRef when ObjRef != null: AttrWriter.PutString(w, raw, ObjRef); return true;
            case NftaSetElem.Expressions when Expressions != null: AttrLists.Expressions(w, raw, Expressions, f); return true;
            default: return false;
        }
    }

    public bool Equals(SetElement? o) => o is not null && Equals(Key, o.Key) && Equals(KeyEnd, o.KeyEnd) && Equals(Data, o.Data)
        && Flags == o.Flags && Timeout == o.Timeout && Expiration == o.Expiration && Bin.Eq(UserData, o.UserData)
        && Equals(Expr, o.Expr) && ObjRef == o.ObjRef && Bin.Eq(Expressions, o.Expressions) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Key, Flags);
}
