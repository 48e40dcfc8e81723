using System.Collections.Immutable;

namespace Bpfilter.Backend.Bpf;

/// <summary>
/// One BPF instruction as an immutable value. Jumps and local calls name their target label in
/// <see cref="Reference"/>; ld_imm64 map loads name their map in <see cref="MapReference"/>; both are
/// resolved by <see cref="Linker"/>. <see cref="Labels"/> are the names defined at this instruction.
/// Constant holds imm (sign-extended 32 bits), or the full 64-bit value of ld_imm64.
/// </summary>
public sealed record Instruction(byte OpCode, Register Dst = Register.R0, Register Src = Register.R0, short Offset = 0, long Constant = 0)
{
    public string? Reference { get; init; }
    public string? MapReference { get; init; }
    public ImmutableArray<string> Labels { get; init; } = ImmutableArray<string>.Empty;
    /// <summary>Free text shown by the disassembler (e.g. which rule this block belongs to).</summary>
    public string? Comment { get; init; }

    public bool IsLoadImm64 => OpCode == Bpf.OpCode.LdImm64;
    /// <summary>Slots (8-byte words) this instruction takes: ld_imm64 takes two.</summary>
    public int Slots => IsLoadImm64 ? 2 : 1;

    public bool IsJump
    {
        get
        {
            var cls = Bpf.OpCode.Class(OpCode);
            if (cls != Bpf.OpCode.Jmp && cls != Bpf.OpCode.Jmp32) return false;
            var code = (JumpOp)Bpf.OpCode.Code(OpCode);
            return code != JumpOp.Call && code != JumpOp.Exit;
        }
    }

    /// <summary>A call of a helper function (by its number in Constant), neither local nor a kfunc.</summary>
    public bool IsHelperCall => OpCode == (Bpf.OpCode.Jmp | (byte)JumpOp.Call) && Src == 0;

    public bool IsLocalCall => OpCode == (Bpf.OpCode.Jmp | (byte)JumpOp.Call) && (byte)Src == Bpf.OpCode.PseudoCall;

    public Instruction WithLabel(string label) => this with { Labels = Labels.Add(label) };
    public Instruction WithComment(string comment) => this with { Comment = comment };

    public override string ToString() => Disassembler.Format(this, null);
}
