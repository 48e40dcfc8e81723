namespace Nft.Bytecode.Expressions;

public static partial class ExpressionCodec
{
    /// <summary>The typed kinds, by the name the kernel registers them under.</summary>
    static Dictionary<string, DataDecoder> CreateDecoders() => new(StringComparer.Ordinal)
    {
        ["immediate"] = ImmediateExpr.Decode,
        ["lookup"] = LookupExpr.Decode,
        ["counter"] = CounterExpr.Decode,
        ["objref"] = ObjRefExpr.Decode,
        ["dynset"] = DynsetExpr.Decode,
        ["cmp"] = CmpExpr.Decode,
        ["range"] = RangeExpr.Decode,
        ["payload"] = PayloadExpr.Decode,
        ["meta"] = MetaExpr.Decode,
        ["bitwise"] = BitwiseExpr.Decode,
    };
}
