using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// A socket filter that runs one limit's token bucket in the shared <see cref="LimitMap"/>, for the kernel's copy of a
/// rule whose limit BPF holds: xt_bpf (an xtables match nft_compat runs in an nf_tables rule) runs it on the packet and
/// matches when it returns nonzero, so the kernel copy spends BPF's bucket instead of a new, full one of its own. The
/// refill is the chain programs' own (<see cref="Codegen.TokenBucket"/>, nft_limit_eval): the clock is read before the lock, the cost of
/// a byte limit is nsecs * skb->len / rate (skb->len, which nft_limit reads at the same hook), `over` inverts.
/// The verifier refuses a socket filter a map holding a bpf_spin_lock ("socket filter progs cannot use bpf_spin_lock
/// yet"), but not the same map reached through a map of maps: <see cref="Outer"/> holds the limit map at index 0.
/// </summary>
public static class LimitMatch
{
    const string OuterMap = "limit_outer";
    const short Key = -4;

    /// <summary>An array of maps of one entry, the limit map, through which the filters reach it.</summary>
    public static BpfMap Outer(LimitMap limits)
    {
        var outer = BpfMap.Create(BpfMapType.ArrayOfMaps, OuterMap, 4, 4, 1, inner: limits.Map);
        outer.Update(BitConverter.GetBytes(0u), BitConverter.GetBytes((uint)limits.Map.Fd.Value));
        return outer;
    }

    public static IReadOnlyList<Instruction> Code(LimitStatement l)
    {
        var asm = new Assembler();
        // skb->len (struct __sk_buff's first member) before any call
        asm.Emit(Asm.LdxW(R6, R1, 0), Asm.StW(R10, Key, 0), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.LoadMapFd(R1, OuterMap), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, "none"),
            Asm.StW(R10, Key, (int)l.StateSlot), Asm.Mov64Reg(R1, R0), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, "none"), Asm.Mov64Reg(R9, R0));
        if (l.Type == LimitType.Bytes)
            asm.Emit(Asm.LoadImm64(R2, (long)l.Nsecs), Asm.Alu64Reg(AluOp.Mul, R6, R2), Asm.LoadImm64(R2, (long)l.Rate), Asm.Alu64Reg(AluOp.Div, R6, R2));
        else
            asm.Emit(Asm.LoadImm64(R6, (long)l.PacketCost));
        asm.Emit(Asm.Call(HelperFunc.KtimeGetNs), Asm.Mov64Reg(R7, R0), Asm.Mov64Reg(R1, R9), Asm.Call(HelperFunc.SpinLock));
        Codegen.TokenBucket.EmitRefill(asm, l, Asm.Mov64Reg(R2, R7), "later", "capped");
        asm.Emit(Asm.Mov64Reg(R0, R4), Asm.Sub64Reg(R0, R6), Asm.JumpImm(JumpOp.Jslt, R0, 0, "short"),
            Asm.StxDW(R1, LimitMap.Tokens, R0), Asm.Call(HelperFunc.SpinUnlock), Asm.Mov64Imm(R0, l.Over ? 0 : 1), Asm.Exit());
        asm.Label("short");
        asm.Emit(Asm.StxDW(R1, LimitMap.Tokens, R4), Asm.Call(HelperFunc.SpinUnlock), Asm.Mov64Imm(R0, l.Over ? 1 : 0), Asm.Exit());
        // unreachable while the outer map holds the limit map and the slot is within it
        asm.Label("none");
        asm.Emit(Asm.Mov64Imm(R0, 0), Asm.Exit());
        return asm.Build();
    }

    public static BpfProgram Load(LimitStatement l, BpfMap outer) =>
        BpfProgram.Load(BpfProgType.SocketFilter, $"limit_{l.StateSlot}", Linker.Link(Code(l), _ => outer.Fd.Value));
}
