using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>nft's `quota` (an expression or a quota object's state) as an IR <see cref="QuotaStatement"/>.</summary>
public static class QuotaStatements
{
    public static QuotaStatement Lift(QuotaExpr q, ulong slot, Func<string, Exception> refuse)
    {
        var flags = q.Flags ?? 0;
        // NFT_QUOTA_F_DEPLETED is state the kernel reports, not configuration; any other bit is unknown
        if ((flags & ~(QuotaExpr.NFT_QUOTA_F_INV | QuotaExpr.NFT_QUOTA_F_DEPLETED)) != 0)
            throw refuse($"expression 'quota' with flags 0x{flags:x} is not supported by bpfilter-nft");
        return new QuotaStatement(q.Bytes, (flags & QuotaExpr.NFT_QUOTA_F_INV) != 0, slot) { Used = q.Consumed ?? 0 };
    }
}
