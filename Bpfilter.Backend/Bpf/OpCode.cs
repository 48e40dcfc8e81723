namespace Bpfilter.Backend.Bpf;

/// <summary>Opcode bits from linux/bpf.h and linux/bpf_common.h.</summary>
public static class OpCode
{
    // Instruction classes.
    public const byte Ld = 0x00, Ldx = 0x01, St = 0x02, Stx = 0x03, Alu = 0x04, Jmp = 0x05, Jmp32 = 0x06, Alu64 = 0x07;
    // Sizes.
    public const byte W = 0x00, H = 0x08, B = 0x10, DW = 0x18;
    // Modes.
    public const byte Imm = 0x00, Mem = 0x60, Atomic = 0xc0;
    // Source operand.
    public const byte K = 0x00, X = 0x08;
    // BPF_END direction.
    public const byte ToLe = 0x00, ToBe = 0x08;

    public static byte Class(byte op) => (byte)(op & 0x07);
    public static byte Size(byte op) => (byte)(op & 0x18);
    public static byte Mode(byte op) => (byte)(op & 0xe0);
    public static byte Source(byte op) => (byte)(op & 0x08);
    public static byte Code(byte op) => (byte)(op & 0xf0);

    public static int SizeBytes(byte op) => Size(op) switch { W => 4, H => 2, B => 1, _ => 8 };

    /// <summary>ld_imm64 (two slots).</summary>
    public const byte LdImm64 = Ld | DW | Imm;

    // src_reg values of ld_imm64 and call.
    public const byte PseudoMapFd = 1, PseudoMapValue = 2;
    public const byte PseudoCall = 1, PseudoKfuncCall = 2;
}

public enum AluOp : byte
{
    Add = 0x00, Sub = 0x10, Mul = 0x20, Div = 0x30, Or = 0x40, And = 0x50, Lsh = 0x60, Rsh = 0x70,
    Neg = 0x80, Mod = 0x90, Xor = 0xa0, Mov = 0xb0, Arsh = 0xc0, End = 0xd0,
}

public enum JumpOp : byte
{
    Ja = 0x00, Jeq = 0x10, Jgt = 0x20, Jge = 0x30, Jset = 0x40, Jne = 0x50, Jsgt = 0x60, Jsge = 0x70,
    Call = 0x80, Exit = 0x90, Jlt = 0xa0, Jle = 0xb0, Jslt = 0xc0, Jsle = 0xd0, Jcond = 0xe0,
}

public enum Size : byte { W = OpCode.W, H = OpCode.H, B = OpCode.B, DW = OpCode.DW }
