using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Reads a field (or a 64-bit part of a wide one) into a register as a host-order number, and the
/// constant-handling helpers the matchers share.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>A piece of a field read as one number: bytes [Start, Start+Count) of the field's value.</summary>
    private readonly record struct Part(int Start, int Count);

    private static List<Part> Parts(Field f)
    {
        var bytes = f.Bytes;
        if (f is PayloadField p && (p.OffsetBits % 8 != 0 || p.LengthBits % 8 != 0))
        {
            var span = (p.OffsetBits + p.LengthBits + 7) / 8 - p.OffsetBits / 8;
            if (span > 8) throw new CodegenException($"{f}: unaligned fields wider than 64 bits are not supported");
            return [new Part(0, bytes)];
        }
        var parts = new List<Part>();
        for (var at = 0; at < bytes; at += 8) parts.Add(new Part(at, Math.Min(8, bytes - at)));
        return parts;
    }

    private static ulong Chunk(Value v, Part part)
    {
        ulong x = 0;
        for (var i = 0; i < part.Count; i++) x = x << 8 | v.Bytes[part.Start + i];
        return x;
    }

    private void JumpConst(JumpOp op, Register r, ulong c, string target)
    {
        if (c <= int.MaxValue) { _asm.Emit(Asm.JumpImm(op, r, (int)c, target)); return; }
        _asm.Emit(Asm.LoadImm64(R3, (long)c), Asm.JumpReg(op, r, R3, target));
    }

    private void AndConst(Register r, ulong c)
    {
        if (c <= int.MaxValue) { _asm.Emit(Asm.And64Imm(r, (int)c)); return; }
        _asm.Emit(Asm.LoadImm64(R3, (long)c), Asm.And64Reg(r, R3));
    }

    /// <summary>Loads a part of a field as a host-order number into dst, or jumps to fail when the packet lacks it.</summary>
    private void LoadField(Field f, Part part, Register dst, string fail)
    {
        switch (f)
        {
            case MetaField meta:
                LoadMeta(meta.Key, part, dst, fail);
                return;
            case PayloadField p:
                LoadPayload(p, part, dst, fail);
                return;
            case CtField ct:
                LoadCt(ct, part, dst, fail);
                return;
        }
        throw new CodegenException($"unsupported field {f}");
    }

    /// <summary>Reads count big-endian bytes at (at + start) into dst as a number, using aligned loads.</summary>
    private void LoadNumber(BytesRef at, int start, int count, Register dst)
    {
        var first = true;
        var pos = 0;
        while (pos < count)
        {
            var size = ChunkSize(at.Offset + start + pos, count - pos);
            var target = first ? dst : R2;
            var sz = size switch { 1 => Size.B, 2 => Size.H, 4 => Size.W, _ => Size.DW };
            _asm.Emit(Asm.Ldx(sz, target, at.Pointer, (short)(at.Offset + start + pos)));
            if (size > 1) _asm.Emit(Asm.ToBigEndian(target, size * 8));
            if (!first) _asm.Emit(Asm.Lsh64Imm(dst, size * 8), Asm.Or64Reg(dst, R2));
            first = false;
            pos += size;
        }
    }

    /// <summary>Largest power of two ≤ remaining that keeps the access aligned (stack accesses must be).</summary>
    private static int ChunkSize(int offset, int remaining)
    {
        foreach (var s in new[] { 8, 4, 2 })
            if (s <= remaining && (offset % s + s) % s == 0) return s;
        return 1;
    }
}
