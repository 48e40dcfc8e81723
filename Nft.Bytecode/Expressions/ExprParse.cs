using Nft.Bytecode.Data;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>Checks shared by expression decoders, following the kernel's init functions.</summary>
internal static class ExprParse
{
    const int EOVERFLOW = 75;

    /// <summary>Width of one register data slot (struct nft_data) for cmp, range, bitwise.</summary>
    public const int RegDataMax = 16;

    /// <summary>
    /// A register number as nft_parse_register and the load/store validation take it: above
    /// NFT_REG32_15 is ERANGE; 5..7 (which alias the verdict area) and, unless allowed, the verdict
    /// register itself are EINVAL.
    /// </summary>
    public static uint? Reg(ref AttrParser p, ushort type, bool allowVerdict = false)
    {
        if (!p.TryGet(type, out var a)) return null;
        uint r = a.U32Be();
        if (r > NftRegisters.Reg32Last)
            throw new NetlinkException(Errno.ERANGE, $"invalid register {r}", a.Offset);
        if ((r > NftRegisters.Reg4 && r < NftRegisters.Reg32First) || (r == NftRegisters.Verdict && !allowVerdict))
            throw new NetlinkException(Errno.EINVAL, $"register {r} cannot be used here", a.Offset);
        return r;
    }

    public static uint ReqReg(ref AttrParser p, ushort type, string name, bool allowVerdict = false) =>
        Reg(ref p, type, allowVerdict) ?? throw p.Missing(name);

    /// <summary>A u32 that must fit <paramref name="max"/> (nft_parse_u32_check: ERANGE).</summary>
    public static uint? U32Max(ref AttrParser p, ushort type, uint max)
    {
        if (!p.TryGet(type, out var a)) return null;
        uint v = a.U32Be();
        if (v > max) throw new NetlinkException(Errno.ERANGE, $"value {v} exceeds {max}", a.Offset);
        return v;
    }

    public static NftData? Data(ref AttrParser p, ushort type, int maxLen = NftLimits.DataValueMaxLen) =>
        p.TryGet(type, out var a) ? NftDataCodec.Decode(a, maxLen) : null;

    public static NftData ReqData(ref AttrParser p, ushort type, string name, int maxLen = NftLimits.DataValueMaxLen) =>
        Data(ref p, type, maxLen) ?? throw p.Missing(name);

    /// <summary>A value (not a verdict) as the expressions that compare or mask registers need.</summary>
    public static NftData ReqValue(ref AttrParser p, ushort type, string name, int maxLen = RegDataMax)
    {
        if (!p.TryGet(type, out var a)) throw p.Missing(name);
        var d = NftDataCodec.Decode(a, maxLen);
        if (d is not ValueData) throw new NetlinkException(Errno.EINVAL, $"{name} must be a value", a.Offset);
        return d;
    }

    public static Expression? Expr(ref AttrParser p, ushort type) =>
        p.TryGet(type, out var a) ? ExpressionCodec.Decode(a) : null;

    public static IReadOnlyList<Expression>? Exprs(ref AttrParser p, ushort type, int max = NftLimits.SetExprMax) =>
        p.TryGet(type, out var a) ? AttrLists.ReadExpressions(a, max) : null;

    public static NetlinkException Invalid(ref AttrParser p, string what) => new(Errno.EINVAL, what, p.NestOffset);
    public static NetlinkException NotSupported(ref AttrParser p, string what) => new(Errno.EOPNOTSUPP, what, p.NestOffset);
    public static int Overflow => EOVERFLOW;
}
