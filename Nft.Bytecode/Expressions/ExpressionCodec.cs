using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// Decodes and encodes NFTA_LIST_ELEM / NFTA_EXPR_* nests. Dispatch is by name through a table;
/// a name without a typed decoder becomes <see cref="OpaqueExpr"/>.
/// </summary>
public static partial class ExpressionCodec
{
    public const ushort NFTA_EXPR_NAME = 1;
    public const ushort NFTA_EXPR_DATA = 2;
    public const ushort NFTA_LIST_ELEM = 1;

    /// <summary>Decodes the contents of NFTA_EXPR_DATA (possibly empty when the attribute was absent) into a new expression.</summary>
    public delegate Expression DataDecoder(NetlinkAttribute data);

    static readonly Dictionary<string, DataDecoder> Decoders = CreateDecoders();

    [ThreadStatic] static int t_depth;

    public static void Register(string name, DataDecoder decoder)
    {
        lock (Decoders) Decoders[name] = decoder;
    }

    public static bool IsTyped(string name) => Decoders.ContainsKey(name);

    /// <summary>Decodes the inside of one expression nest (NFTA_EXPR_NAME, NFTA_EXPR_DATA).</summary>
    public static Expression Decode(NetlinkAttribute expr)
    {
        if (t_depth >= NftLimits.ExprNestingMax)
            throw new NetlinkException(Errno.EINVAL, "expressions nested too deeply", expr.Offset);
        t_depth++;
        try
        {
            var p = AttrParser.Of(expr);
            string name = p.Str(NFTA_EXPR_NAME, NftLimits.ExprNameMax)
                ?? throw new NetlinkException(Errno.EINVAL, "expression without a name", expr.Offset);
            bool hasData = p.TryGet(NFTA_EXPR_DATA, out var data);
            if (!hasData) data = new NetlinkAttribute(NFTA_EXPR_DATA, [], expr.Offset);
            Expression e;
            if (Decoders.TryGetValue(name, out var d))
                e = d(data);
            else
                e = new OpaqueExpr(name, data.Payload.ToArray()) { Layout = new AttributeLayout(data.RawType, []) };
            return e.Framed(p.Layout());
        }
        finally
        {
            t_depth--;
        }
    }

    /// <summary>Decodes NFTA_EXPR_DATA-style contents as the typed kind <paramref name="name"/>; null when the kind is not typed.</summary>
    public static Expression? DecodeData(string name, NetlinkAttribute data) =>
        Decoders.TryGetValue(name, out var d) ? d(data) : null;

    /// <summary>Writes one expression as a nest of the given attribute type (NFTA_LIST_ELEM in lists).</summary>
    public static void Encode(NetlinkWriter w, Expression e, ushort nestType = NFTA_LIST_ELEM) =>
        Encode(w, e, nestType, WireFormat.AsDecoded);

    public static void Encode(NetlinkWriter w, Expression e, ushort nestType, WireFormat format)
    {
        ushort raw = AttrWriter.NestType(e.Framing, nestType, format);
        var t = AttrWriter.BeginNest(w, raw);
        AttrWriter.Write(w, e.Framing, FramingOrder, new FramingSource(e), format);
        w.EndNested(t);
    }

    static readonly ushort[] FramingOrder = [NFTA_EXPR_NAME, NFTA_EXPR_DATA];

    readonly struct FramingSource(Expression e) : IAttributeSource
    {
        public bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
        {
            switch (raw & NlaFlags.TypeMask)
            {
                case NFTA_EXPR_NAME:
                    AttrWriter.PutString(w, raw, e.Name);
                    return true;
                case NFTA_EXPR_DATA:
                    bool decodedWithData = e.Framing == null || e.Framing.Has(NFTA_EXPR_DATA);
                    bool present = f == WireFormat.Kernel || e.Framing == null ? e.KernelDumpsData : decodedWithData;
                    if (!present) return false;
                    var t = AttrWriter.BeginNest(w, raw);
                    e.EncodeData(w, f);
                    w.EndNested(t);
                    return true;
                default:
                    return false;
            }
        }
    }
}
