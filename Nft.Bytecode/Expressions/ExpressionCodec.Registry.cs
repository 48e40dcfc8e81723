namespace Nft.Bytecode.Expressions;

public static partial class ExpressionCodec
{
    /// <summary>The typed kinds, by the name the kernel registers them under.</summary>
    static Dictionary<string, DataDecoder> CreateDecoders() => new(StringComparer.Ordinal)
    {
    };
}
