using System.Buffers.Binary;

namespace Bpfilter.Backend.Bpf;

/// <summary>
/// Marshals instructions to the kernel's 8-byte format in one pass over label positions:
/// jump offsets, local call offsets and map fds are resolved here; any failure names the index of
/// the offending instruction.
/// </summary>
public static class Linker
{
    public const int InstructionSize = 8;

    /// <param name="mapFd">Resolves a map name to its fd; null if the program references no maps.</param>
    public static byte[] Link(IReadOnlyList<Instruction> insns, Func<string, int>? mapFd = null)
    {
        var slotOf = new int[insns.Count];
        var labels = new Dictionary<string, int>(StringComparer.Ordinal);
        var slots = 0;
        for (var i = 0; i < insns.Count; i++)
        {
            slotOf[i] = slots;
            foreach (var l in insns[i].Labels)
                if (!labels.TryAdd(l, slots))
                    throw new BpfAssemblyException(i, $"label '{l}' defined twice");
            slots += insns[i].Slots;
        }

        var raw = new byte[slots * InstructionSize];
        for (var i = 0; i < insns.Count; i++)
        {
            var insn = insns[i];
            var pos = slotOf[i];
            var off = insn.Offset;
            var imm = insn.Constant;
            var op = insn.OpCode;

            if (insn.Reference is { } target)
            {
                if (!labels.TryGetValue(target, out var to))
                    throw new BpfAssemblyException(i, $"unknown label '{target}'");
                var delta = to - (pos + 1);
                if (insn.IsLocalCall)
                {
                    imm = delta;
                }
                else if (insn.IsJump)
                {
                    if (delta is >= short.MinValue and <= short.MaxValue)
                    {
                        off = (short)delta;
                    }
                    else if (op == (OpCode.Jmp | (byte)JumpOp.Ja))
                    {
                        // gotol: BPF_JMP32 | BPF_JA takes a 32-bit offset in imm.
                        op = OpCode.Jmp32 | (byte)JumpOp.Ja;
                        off = 0;
                        imm = delta;
                    }
                    else
                    {
                        throw new BpfAssemblyException(i, $"conditional jump to '{target}' is {delta} instructions away (limit ±32767)");
                    }
                }
                else
                {
                    throw new BpfAssemblyException(i, $"only jumps and local calls take a label, not '{insn}'");
                }
            }

            if (insn.MapReference is { } map)
            {
                if (!insn.IsLoadImm64)
                    throw new BpfAssemblyException(i, "a map reference needs ld_imm64");
                if (mapFd is null)
                    throw new BpfAssemblyException(i, $"map '{map}' referenced but no maps given");
                int fd;
                try { fd = mapFd(map); }
                catch (KeyNotFoundException) { throw new BpfAssemblyException(i, $"unknown map '{map}'"); }
                imm = fd;
            }

            if (!insn.IsLoadImm64 && (imm < int.MinValue || imm > int.MaxValue))
                throw new BpfAssemblyException(i, $"constant {imm} does not fit in 32 bits");

            var span = raw.AsSpan(pos * InstructionSize);
            Encode(span, op, insn.Dst, insn.Src, off, (int)imm);
            if (insn.IsLoadImm64)
                Encode(span[InstructionSize..], 0, 0, 0, 0, (int)(imm >> 32));
        }
        return raw;
    }

    private static void Encode(Span<byte> dst, byte op, Register d, Register s, short off, int imm)
    {
        dst[0] = op;
        dst[1] = (byte)((byte)d & 0x0f | ((byte)s & 0x0f) << 4);
        BinaryPrimitives.WriteInt16LittleEndian(dst[2..], off);
        BinaryPrimitives.WriteInt32LittleEndian(dst[4..], imm);
    }
}
