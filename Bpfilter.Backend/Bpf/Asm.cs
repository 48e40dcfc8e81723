using static Bpfilter.Backend.Bpf.OpCode;

namespace Bpfilter.Backend.Bpf;

/// <summary>
/// Instruction constructors that read like the assembly: <c>Asm.JneImm(R1, 6, "next")</c>,
/// <c>Asm.Call(HelperFunc.MapLookupElem)</c>, <c>Asm.LdxW(R2, R1, 4)</c>.
/// </summary>
public static class Asm
{
    // ALU
    public static Instruction Alu64Imm(AluOp op, Register dst, int imm) => new((byte)(Alu64 | (byte)op | K), dst, Constant: imm);
    public static Instruction Alu64Reg(AluOp op, Register dst, Register src) => new((byte)(Alu64 | (byte)op | X), dst, src);
    public static Instruction Alu32Imm(AluOp op, Register dst, int imm) => new((byte)(Alu | (byte)op | K), dst, Constant: imm);
    public static Instruction Alu32Reg(AluOp op, Register dst, Register src) => new((byte)(Alu | (byte)op | X), dst, src);

    public static Instruction Mov64Imm(Register dst, int imm) => Alu64Imm(AluOp.Mov, dst, imm);
    public static Instruction Mov64Reg(Register dst, Register src) => Alu64Reg(AluOp.Mov, dst, src);
    public static Instruction Mov32Imm(Register dst, int imm) => Alu32Imm(AluOp.Mov, dst, imm);
    public static Instruction Mov32Reg(Register dst, Register src) => Alu32Reg(AluOp.Mov, dst, src);
    public static Instruction Add64Imm(Register dst, int imm) => Alu64Imm(AluOp.Add, dst, imm);
    public static Instruction Add64Reg(Register dst, Register src) => Alu64Reg(AluOp.Add, dst, src);
    public static Instruction Sub64Reg(Register dst, Register src) => Alu64Reg(AluOp.Sub, dst, src);
    public static Instruction And64Imm(Register dst, int imm) => Alu64Imm(AluOp.And, dst, imm);
    public static Instruction And64Reg(Register dst, Register src) => Alu64Reg(AluOp.And, dst, src);
    public static Instruction Or64Reg(Register dst, Register src) => Alu64Reg(AluOp.Or, dst, src);
    public static Instruction Lsh64Imm(Register dst, int imm) => Alu64Imm(AluOp.Lsh, dst, imm);
    public static Instruction Rsh64Imm(Register dst, int imm) => Alu64Imm(AluOp.Rsh, dst, imm);
    public static Instruction Mul64Imm(Register dst, int imm) => Alu64Imm(AluOp.Mul, dst, imm);

    /// <summary>Convert dst between host (little endian) and big endian, width 16/32/64 bits.</summary>
    public static Instruction ToBigEndian(Register dst, int bits) => new((byte)(Alu | (byte)AluOp.End | ToBe), dst, Constant: bits);

    // Memory
    public static Instruction Ldx(Size size, Register dst, Register src, short off) => new((byte)(OpCode.Ldx | (byte)size | Mem), dst, src, off);
    public static Instruction LdxB(Register dst, Register src, short off) => Ldx(Size.B, dst, src, off);
    public static Instruction LdxH(Register dst, Register src, short off) => Ldx(Size.H, dst, src, off);
    public static Instruction LdxW(Register dst, Register src, short off) => Ldx(Size.W, dst, src, off);
    public static Instruction LdxDW(Register dst, Register src, short off) => Ldx(Size.DW, dst, src, off);
    public static Instruction Stx(Size size, Register dst, short off, Register src) => new((byte)(OpCode.Stx | (byte)size | Mem), dst, src, off);
    public static Instruction StxB(Register dst, short off, Register src) => Stx(Size.B, dst, off, src);
    public static Instruction StxH(Register dst, short off, Register src) => Stx(Size.H, dst, off, src);
    public static Instruction StxW(Register dst, short off, Register src) => Stx(Size.W, dst, off, src);
    public static Instruction StxDW(Register dst, short off, Register src) => Stx(Size.DW, dst, off, src);
    public static Instruction St(Size size, Register dst, short off, int imm) => new((byte)(OpCode.St | (byte)size | Mem), dst, Offset: off, Constant: imm);
    public static Instruction StB(Register dst, short off, int imm) => St(Size.B, dst, off, imm);
    public static Instruction StH(Register dst, short off, int imm) => St(Size.H, dst, off, imm);
    public static Instruction StW(Register dst, short off, int imm) => St(Size.W, dst, off, imm);
    public static Instruction StDW(Register dst, short off, int imm) => St(Size.DW, dst, off, imm);

    /// <summary>*(u64*)(dst+off) += src, atomically.</summary>
    public static Instruction AtomicAdd64(Register dst, short off, Register src) =>
        new((byte)(OpCode.Stx | DW | Atomic), dst, src, off, (byte)AluOp.Add);

    /// <summary>BPF_FETCH: an atomic operation that also loads the old value into src.</summary>
    public const int AtomicFetch = 0x01;

    /// <summary>src = *(u64*)(dst+off); *(u64*)(dst+off) += src, atomically (atomic64_fetch_add).</summary>
    public static Instruction AtomicFetchAdd64(Register dst, short off, Register src) =>
        new((byte)(OpCode.Stx | DW | Atomic), dst, src, off, (byte)AluOp.Add | AtomicFetch);

    /// <summary>src = *(u32*)(dst+off); *(u32*)(dst+off) |= src, atomically (atomic_fetch_or; src zero-extended).</summary>
    public static Instruction AtomicFetchOr32(Register dst, short off, Register src) =>
        new((byte)(OpCode.Stx | W | Atomic), dst, src, off, (byte)AluOp.Or | AtomicFetch);

    /// <summary>src = *(u32*)(dst+off); *(u32*)(dst+off) &amp;= src, atomically (atomic_fetch_and; src zero-extended).</summary>
    public static Instruction AtomicFetchAnd32(Register dst, short off, Register src) =>
        new((byte)(OpCode.Stx | W | Atomic), dst, src, off, (byte)AluOp.And | AtomicFetch);

    /// <summary>BPF_CMPXCHG (with BPF_FETCH, kernel 5.12): the atomic operation code of a compare-and-exchange.</summary>
    public const int AtomicCmpXchg = 0xf0 | AtomicFetch;

    /// <summary>
    /// R0 = atomic_cmpxchg((u64*)(dst+off), R0, src): the word becomes src only when it held R0; R0 gets what it held
    /// (fully ordered, as the kernel's atomic64_cmpxchg).
    /// </summary>
    public static Instruction AtomicCmpXchg64(Register dst, short off, Register src) =>
        new((byte)(OpCode.Stx | DW | Atomic), dst, src, off, AtomicCmpXchg);

    /// <summary>ld_imm64: dst = a 64-bit constant.</summary>
    public static Instruction LoadImm64(Register dst, long value) => new(LdImm64, dst, Constant: value);

    /// <summary>ld_imm64 with BPF_PSEUDO_MAP_FD: dst = the map named <paramref name="map"/> (fd resolved at link time).</summary>
    public static Instruction LoadMapFd(Register dst, string map) =>
        new Instruction(LdImm64, dst, (Register)PseudoMapFd) { MapReference = map };

    // Jumps
    public static Instruction JumpImm(JumpOp op, Register dst, int imm, string label) =>
        new Instruction((byte)(Jmp | (byte)op | K), dst, Constant: imm) { Reference = label };
    public static Instruction JumpReg(JumpOp op, Register dst, Register src, string label) =>
        new Instruction((byte)(Jmp | (byte)op | X), dst, src) { Reference = label };
    public static Instruction Jump32Imm(JumpOp op, Register dst, int imm, string label) =>
        new Instruction((byte)(Jmp32 | (byte)op | K), dst, Constant: imm) { Reference = label };

    /// <summary>
    /// may_goto (BPF_JCOND, kernel 6.9): jumps once the program's hidden loop budget is spent. At a loop's
    /// head it lets the verifier stop at the first iteration whose state an earlier one covers, instead of
    /// walking every iteration a counter allows.
    /// </summary>
    public static Instruction MayGoto(string label) => new Instruction((byte)(Jmp | (byte)JumpOp.Jcond)) { Reference = label };

    public static Instruction Ja(string label) => new Instruction((byte)(Jmp | (byte)JumpOp.Ja)) { Reference = label };
    public static Instruction JeqImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jeq, dst, imm, label);
    public static Instruction JneImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jne, dst, imm, label);
    public static Instruction JgtImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jgt, dst, imm, label);
    public static Instruction JgeImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jge, dst, imm, label);
    public static Instruction JltImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jlt, dst, imm, label);
    public static Instruction JleImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jle, dst, imm, label);
    public static Instruction JsetImm(Register dst, int imm, string label) => JumpImm(JumpOp.Jset, dst, imm, label);
    public static Instruction JeqReg(Register dst, Register src, string label) => JumpReg(JumpOp.Jeq, dst, src, label);
    public static Instruction JneReg(Register dst, Register src, string label) => JumpReg(JumpOp.Jne, dst, src, label);
    public static Instruction JgtReg(Register dst, Register src, string label) => JumpReg(JumpOp.Jgt, dst, src, label);
    public static Instruction JgeReg(Register dst, Register src, string label) => JumpReg(JumpOp.Jge, dst, src, label);
    public static Instruction JltReg(Register dst, Register src, string label) => JumpReg(JumpOp.Jlt, dst, src, label);
    public static Instruction JleReg(Register dst, Register src, string label) => JumpReg(JumpOp.Jle, dst, src, label);

    // Calls
    public static Instruction Call(HelperFunc helper) => new((byte)(Jmp | (byte)JumpOp.Call), Constant: (int)helper);
    /// <summary>Call a kernel function by its vmlinux BTF id.</summary>
    public static Instruction CallKfunc(int btfId) => new((byte)(Jmp | (byte)JumpOp.Call), Src: (Register)PseudoKfuncCall, Constant: btfId);
    /// <summary>bpf-to-bpf call of the subprogram starting at <paramref name="label"/>.</summary>
    public static Instruction CallLocal(string label) =>
        new Instruction((byte)(Jmp | (byte)JumpOp.Call), Src: (Register)PseudoCall) { Reference = label };
    public static Instruction Exit() => new((byte)(Jmp | (byte)JumpOp.Exit));
}
