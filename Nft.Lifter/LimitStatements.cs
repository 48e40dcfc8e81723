using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>nft's `limit` (an expression or a limit object's state) as an IR <see cref="LimitStatement"/>.</summary>
public static class LimitStatements
{
    /// <summary>nft_limit's NFT_LIMIT_PKT_BURST_DEFAULT: a packet limit sent with burst 0 gets this burst.</summary>
    public const uint DefaultPacketBurst = 5;

    /// <summary>Refuses what nft_limit_init refuses (rate 0, overflows, unknown type or flags): the engine validates first, this keeps the codegen's arithmetic total.</summary>
    public static LimitStatement Lift(LimitExpr l, ulong slot, Func<string, Exception> refuse)
    {
        var type = l.Type ?? LimitExpr.TypePackets;
        if (type is not (LimitExpr.TypePackets or LimitExpr.TypeBytes))
            throw refuse($"expression 'limit' of type {type} is not supported by bpfilter-nft");
        if (((l.Flags ?? 0) & ~LimitExpr.NFT_LIMIT_F_INV) != 0)
            throw refuse($"expression 'limit' with flags 0x{l.Flags:x} is not supported by bpfilter-nft");
        var packets = type == LimitExpr.TypePackets;
        var burst = l.Burst ?? 0;
        if (packets && burst == 0) burst = DefaultPacketBurst;
        if (l.Rate == 0 || l.Unit > ulong.MaxValue / 1_000_000_000 || l.Rate > ulong.MaxValue - burst
            || LimitStatement.TokensMax(l.Rate, l.Unit * 1_000_000_000, burst, packets) is null)
            throw refuse($"expression 'limit' rate {l.Rate} per {l.Unit} s burst {burst} is out of nft_limit's range");
        return new LimitStatement(l.Rate, TimeSpan.FromSeconds(l.Unit), burst, packets ? LimitType.Packets : LimitType.Bytes,
            ((l.Flags ?? 0) & LimitExpr.NFT_LIMIT_F_INV) != 0) { StateSlot = slot };
    }

    /// <summary><see cref="Lift"/>, or null where it refuses (for a limit lifted before: a refusal then is no rule's to report).</summary>
    public static LimitStatement? TryLift(LimitExpr l, ulong slot)
    {
        try
        {
            return Lift(l, slot, e => new InvalidOperationException(e));
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
