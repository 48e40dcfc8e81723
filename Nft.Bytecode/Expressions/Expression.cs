using Nft.Bytecode.Data;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// One nf_tables expression (NFTA_LIST_ELEM: NFTA_EXPR_NAME + NFTA_EXPR_DATA). Concrete kinds are
/// immutable records, one file each, holding their own Decode and EncodeData.
/// </summary>
public abstract record Expression
{
    /// <summary>The kernel's expression name ("payload", "cmp", ...).</summary>
    public abstract string Name { get; }

    /// <summary>Writes the attributes inside NFTA_EXPR_DATA (the nest itself is written by the codec).</summary>
    public abstract void EncodeData(NetlinkWriter w);

    /// <summary>As <see cref="EncodeData(NetlinkWriter)"/>, choosing decoded or kernel attribute order.</summary>
    public virtual void EncodeData(NetlinkWriter w, WireFormat format) => EncodeData(w);

    /// <summary>Layout of the NFTA_EXPR_DATA contents as decoded (null: built in code).</summary>
    public AttributeLayout? Layout { get; init; }

    /// <summary>Layout of the expression nest itself (NFTA_EXPR_NAME, NFTA_EXPR_DATA) as decoded.</summary>
    public AttributeLayout? Framing { get => _framing; init => _framing = value; }

    AttributeLayout? _framing;

    /// <summary>
    /// Gives an expression its decoder just built, not yet seen by anyone else, its framing in place: a copy
    /// through `with` for every expression of every rule was a third of what decoding a rule allocated.
    /// </summary>
    internal Expression Framed(AttributeLayout framing)
    {
        _framing = framing;
        return this;
    }

    /// <summary>Whether the kernel's dump of this kind carries NFTA_EXPR_DATA (kinds without a dump callback do not).</summary>
    public virtual bool KernelDumpsData => true;
}

/// <summary>
/// Base of typed expression kinds: attributes are written one by one, in the decoded layout when
/// there is one (so nft's and the kernel's orders both round-trip), else in the kernel's dump order.
/// </summary>
public abstract record AttributeExpression : Expression, IAttributeSource
{
    /// <summary>Attribute types in the order the kernel's dump callback writes them.</summary>
    protected abstract ReadOnlySpan<ushort> KernelOrder { get; }

    /// <summary>Writes the attribute of the given type if this expression holds it.</summary>
    protected abstract bool WriteAttribute(NetlinkWriter w, AttrSlot rawType, WireFormat format);

    public sealed override void EncodeData(NetlinkWriter w) => EncodeData(w, WireFormat.AsDecoded);

    public sealed override void EncodeData(NetlinkWriter w, WireFormat format) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot rawType, WireFormat format) =>
        WriteAttribute(w, rawType, format);

    // Writers for WriteAttribute: each writes the value when present and says whether it did.
    protected static bool U32(NetlinkWriter w, ushort raw, uint? v) { if (v is not { } x) return false; w.PutU32Be(raw, x); return true; }
    protected static bool S32(NetlinkWriter w, ushort raw, int? v) { if (v is not { } x) return false; w.PutU32Be(raw, (uint)x); return true; }
    protected static bool U64(NetlinkWriter w, ushort raw, ulong? v) { if (v is not { } x) return false; w.PutU64Be(raw, x); return true; }
    protected static bool U16(NetlinkWriter w, ushort raw, ushort? v) { if (v is not { } x) return false; w.PutU16Be(raw, x); return true; }
    protected static bool U8(NetlinkWriter w, ushort raw, byte? v) { if (v is not { } x) return false; w.PutU8(raw, x); return true; }
    protected static bool Str(NetlinkWriter w, AttrSlot raw, string? v) { if (v is null) return false; AttrWriter.PutString(w, raw, v); return true; }
    protected static bool Blob(NetlinkWriter w, ushort raw, byte[]? v) { if (v is null) return false; w.PutRaw(raw, v); return true; }
    protected static bool Dat(NetlinkWriter w, ushort raw, NftData? v, WireFormat f) { if (v is null) return false; NftDataCodec.Encode(w, raw, v, f); return true; }
    protected static bool Exp(NetlinkWriter w, ushort raw, Expression? v, WireFormat f) { if (v is null) return false; ExpressionCodec.Encode(w, v, raw, f); return true; }
    protected static bool Exps(NetlinkWriter w, ushort raw, IReadOnlyList<Expression>? v, WireFormat f) { if (v is null) return false; AttrLists.Expressions(w, raw, v, f); return true; }
    protected static int T(ushort raw) => raw & NlaFlags.TypeMask;
}
