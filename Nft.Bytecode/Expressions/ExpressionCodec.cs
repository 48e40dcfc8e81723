using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// Decodes and encodes NFTA_LIST_ELEM / NFTA_EXPR_* nests. Dispatch is by name through a table;
/// a name without a typed decoder becomes <see cref="OpaqueExpr"/>.
/// </summary>
public static class ExpressionCodec
{
    public const ushort NFTA_EXPR_NAME = 1;
    public const ushort NFTA_EXPR_DATA = 2;
    public const ushort NFTA_LIST_ELEM = 1;

    public delegate Expression DataDecoder(AttributeReader data);

    static readonly Dictionary<string, DataDecoder> Decoders = new(StringComparer.Ordinal);

    public static void Register(string name, DataDecoder decoder) => Decoders[name] = decoder;

    /// <summary>Decodes the inside of one expression nest (NFTA_EXPR_NAME, NFTA_EXPR_DATA).</summary>
    public static Expression Decode(NetlinkAttribute expr)
    {
        var t = expr.Table(NFTA_EXPR_DATA);
        if (!t.Has(NFTA_EXPR_NAME))
            throw new NetlinkException(Errno.EINVAL, "expression without a name", expr.Offset);
        string name = t[NFTA_EXPR_NAME].String(16);
        if (!t.Has(NFTA_EXPR_DATA))
            return new OpaqueExpr(name, []);
        var data = t[NFTA_EXPR_DATA];
        return Decoders.TryGetValue(name, out var d)
            ? d(data.Nested())
            : new OpaqueExpr(name, data.Payload.ToArray());
    }

    /// <summary>Writes one expression as a nest of the given attribute type (NFTA_LIST_ELEM in lists).</summary>
    public static void Encode(NetlinkWriter w, Expression e, ushort nestType = NFTA_LIST_ELEM)
    {
        var elem = w.BeginNested(nestType);
        w.PutString(NFTA_EXPR_NAME, e.Name);
        var data = w.BeginNested(NFTA_EXPR_DATA);
        e.EncodeData(w);
        w.EndNested(data);
        w.EndNested(elem);
    }
}
