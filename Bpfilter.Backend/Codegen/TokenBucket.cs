using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// nft_limit's refill of a bucket in the shared <see cref="LimitMap"/>, under its lock, as the chain programs and the
/// kernel copies' socket filters (<see cref="LimitMatch"/>) both run it: one arithmetic for the one bucket they share.
/// </summary>
static class TokenBucket
{
    /// <summary>
    /// With the bucket's value in R9 and its lock held: R1 = the value, R2 = now (<paramref name="loadNow"/> puts the clock
    /// read before the lock in R2; a later `last` another CPU stored stands for now), R4 = min(tokens + now - last, max),
    /// and `last` = now. The caller then spends the cost from R4 or keeps R4 as the tokens.
    /// </summary>
    public static void EmitRefill(Assembler asm, LimitStatement l, Instruction loadNow, string later, string capped)
    {
        asm.Emit(Asm.Mov64Reg(R1, R9), loadNow, Asm.LdxDW(R3, R1, LimitMap.Last), Asm.JgeReg(R2, R3, later), Asm.Mov64Reg(R2, R3));
        asm.Label(later);
        asm.Emit(Asm.LdxDW(R4, R1, LimitMap.Tokens), Asm.Add64Reg(R4, R2), Asm.Sub64Reg(R4, R3),
            Asm.LoadImm64(R5, (long)l.Max), Asm.JleReg(R4, R5, capped), Asm.Mov64Reg(R4, R5));
        asm.Label(capped);
        asm.Emit(Asm.StxDW(R1, LimitMap.Last, R2));
    }
}
