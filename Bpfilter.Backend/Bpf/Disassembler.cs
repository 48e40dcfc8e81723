using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Bpfilter.Backend.Bpf;

/// <summary>
/// Prints instructions in the C-like syntax of llvm-objdump/bpftool (<c>if r1 != 6 goto next</c>),
/// either symbolic (labels, map names) or from marshalled bytes (relative offsets, fds). Used by
/// golden tests and for debugging generated programs.
/// </summary>
public static class Disassembler
{
    /// <summary>Symbolic listing with labels on their own lines.</summary>
    public static string Format(IEnumerable<Instruction> insns)
    {
        var sb = new StringBuilder();
        foreach (var insn in insns)
        {
            foreach (var l in insn.Labels) sb.Append(l).Append(":\n");
            sb.Append("    ").Append(Format(insn, null));
            if (insn.Comment is not null) sb.Append("  ; ").Append(insn.Comment);
            sb.Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Listing of marshalled instructions, one per line, prefixed by slot index.</summary>
    public static string Disassemble(ReadOnlySpan<byte> raw)
    {
        var sb = new StringBuilder();
        for (var pos = 0; pos + Linker.InstructionSize <= raw.Length; pos += Linker.InstructionSize)
        {
            var w = raw.Slice(pos, Linker.InstructionSize);
            var op = w[0];
            var insn = new Instruction(op, (Register)(w[1] & 0x0f), (Register)(w[1] >> 4),
                BinaryPrimitives.ReadInt16LittleEndian(w[2..]), BinaryPrimitives.ReadInt32LittleEndian(w[4..]));
            var slot = pos / Linker.InstructionSize;
            if (insn.IsLoadImm64 && pos + 2 * Linker.InstructionSize <= raw.Length)
            {
                var hi = BinaryPrimitives.ReadInt32LittleEndian(raw.Slice(pos + Linker.InstructionSize + 4));
                insn = insn with { Constant = (long)hi << 32 | (uint)insn.Constant };
                pos += Linker.InstructionSize;
            }
            sb.Append(slot.ToString(CultureInfo.InvariantCulture)).Append(": ").Append(Format(insn, slot)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>One instruction. With <paramref name="slot"/>, unlabelled jumps print their absolute target.</summary>
    public static string Format(Instruction i, int? slot)
    {
        var cls = OpCode.Class(i.OpCode);
        var dst = Reg(i.Dst, cls == OpCode.Alu || cls == OpCode.Jmp32);
        var src = Reg(i.Src, cls == OpCode.Alu || cls == OpCode.Jmp32);
        var useSrc = OpCode.Source(i.OpCode) == OpCode.X;
        var imm = i.Constant.ToString(CultureInfo.InvariantCulture);
        switch (cls)
        {
            case OpCode.Alu:
            case OpCode.Alu64:
            {
                var aop = (AluOp)OpCode.Code(i.OpCode);
                if (aop == AluOp.End)
                    return $"{Reg(i.Dst, false)} = {(useSrc ? "be" : "le")}{imm} {Reg(i.Dst, false)}";
                if (aop == AluOp.Neg) return $"{dst} = -{dst}";
                var sym = aop switch
                {
                    AluOp.Add => "+=", AluOp.Sub => "-=", AluOp.Mul => "*=", AluOp.Div => "/=", AluOp.Or => "|=",
                    AluOp.And => "&=", AluOp.Lsh => "<<=", AluOp.Rsh => ">>=", AluOp.Mod => "%=", AluOp.Xor => "^=",
                    AluOp.Mov => "=", AluOp.Arsh => "s>>=", _ => $"alu{(int)aop:x}",
                };
                return $"{dst} {sym} {(useSrc ? src : imm)}";
            }
            case OpCode.Ldx:
                return $"{dst} = *({SizeName(i.OpCode)} *)({src} {Off(i.Offset)})";
            case OpCode.Stx when OpCode.Mode(i.OpCode) == OpCode.Atomic && i.Constant == Asm.AtomicCmpXchg:
                return $"r0 = atomic_cmpxchg(({SizeName(i.OpCode)} *)({dst} {Off(i.Offset)}), r0, {src})";
            case OpCode.Stx when OpCode.Mode(i.OpCode) == OpCode.Atomic && (i.Constant & Asm.AtomicFetch) != 0:
                return $"{src} = atomic_fetch_add(({SizeName(i.OpCode)} *)({dst} {Off(i.Offset)}), {src})";
            case OpCode.Stx when OpCode.Mode(i.OpCode) == OpCode.Atomic:
                return $"lock *({SizeName(i.OpCode)} *)({dst} {Off(i.Offset)}) += {src}";
            case OpCode.Stx:
                return $"*({SizeName(i.OpCode)} *)({dst} {Off(i.Offset)}) = {src}";
            case OpCode.St:
                return $"*({SizeName(i.OpCode)} *)({dst} {Off(i.Offset)}) = {imm}";
            case OpCode.Ld when i.IsLoadImm64:
                if (i.MapReference is not null) return $"{dst} = map[{i.MapReference}]";
                if ((byte)i.Src == OpCode.PseudoMapFd) return $"{dst} = map_fd({(int)i.Constant})";
                return $"{dst} = 0x{i.Constant:x} ll";
            case OpCode.Jmp:
            case OpCode.Jmp32:
            {
                var jop = (JumpOp)OpCode.Code(i.OpCode);
                if (jop == JumpOp.Exit) return "exit";
                if (jop == JumpOp.Call)
                {
                    if ((byte)i.Src == OpCode.PseudoKfuncCall) return $"call kfunc#{i.Constant}";
                    if ((byte)i.Src == OpCode.PseudoCall) return $"call {Target(i, slot, (int)i.Constant)}";
                    return $"call {HelperName((int)i.Constant)}";
                }
                var delta = jop == JumpOp.Ja && cls == OpCode.Jmp32 ? (int)i.Constant : i.Offset;
                var to = Target(i, slot, delta);
                if (jop == JumpOp.Ja) return $"goto {to}";
                if (jop == JumpOp.Jcond) return $"may_goto {to}";
                var cmp = jop switch
                {
                    JumpOp.Jeq => "==", JumpOp.Jne => "!=", JumpOp.Jgt => ">", JumpOp.Jge => ">=", JumpOp.Jlt => "<",
                    JumpOp.Jle => "<=", JumpOp.Jset => "&", JumpOp.Jsgt => "s>", JumpOp.Jsge => "s>=",
                    JumpOp.Jslt => "s<", JumpOp.Jsle => "s<=", _ => $"j{(int)jop:x}",
                };
                return $"if {dst} {cmp} {(useSrc ? src : imm)} goto {to}";
            }
        }
        return $"unknown opcode 0x{i.OpCode:x2}";
    }

    private static string Target(Instruction i, int? slot, int delta) =>
        i.Reference ?? (slot is { } s ? $"{s + 1 + delta}" : (delta >= 0 ? $"+{delta}" : $"{delta}"));

    private static string Reg(Register r, bool w32) => (w32 ? "w" : "r") + ((int)r).ToString(CultureInfo.InvariantCulture);
    private static string Off(short off) => off >= 0 ? $"+ {off}" : $"- {-off}";
    private static string SizeName(byte op) => OpCode.Size(op) switch { OpCode.W => "u32", OpCode.H => "u16", OpCode.B => "u8", _ => "u64" };

    private static string HelperName(int id) => Enum.IsDefined((HelperFunc)id)
        ? SnakeCase(((HelperFunc)id).ToString())
        : $"helper#{id}";

    private static string SnakeCase(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name)
        {
            if (char.IsUpper(c) && sb.Length > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
