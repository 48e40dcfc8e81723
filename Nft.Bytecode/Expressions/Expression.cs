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
    public AttributeLayout? Framing { get; init; }

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
    protected abstract bool WriteAttribute(NetlinkWriter w, ushort rawType, WireFormat format);

    public sealed override void EncodeData(NetlinkWriter w) => EncodeData(w, WireFormat.AsDecoded);

    public sealed override void EncodeData(NetlinkWriter w, WireFormat format) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, ushort rawType, WireFormat format) =>
        WriteAttribute(w, rawType, format);
}
