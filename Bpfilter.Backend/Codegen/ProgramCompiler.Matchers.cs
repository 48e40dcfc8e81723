using System.Buffers.Binary;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

public sealed partial class ProgramCompiler
{
    private void EmitDependencies(Dependencies d, string fail)
    {
        // Few branches per rule: the verifier keeps one pending state per branch along a path, and a
        // path through a long chain may hold at most 8192 of them.
        var required = d.RequiredFlags;
        if (d.EtherType is not null) required &= ~HasNetwork; // a known EtherType implies the network header
        if (d.L4Proto is not null) required &= ~HasL4Proto; // l4proto is 0 unless set, and 0 is never required
        var mask = required | (d.NeedsTransportHeader ? Fragment : 0);
        if (mask != 0) _asm.Emit(Asm.LdxW(R0, R10, Flags), Asm.And64Imm(R0, mask), Asm.JneImm(R0, required, fail));
        if (d.EtherType is { } t && _flavor.FixedEtherType != t)
        {
            if (_flavor.FixedEtherType is not null) { _asm.Emit(Asm.Ja(fail)); return; } // ip6 field in an ipv4 program
            _asm.Emit(Asm.LdxW(R0, R10, L3Proto), Asm.JneImm(R0, t, fail));
        }
        if (d.L4Proto is { } p) _asm.Emit(Asm.LdxW(R0, R10, L4Proto), Asm.JneImm(R0, p, fail));
    }

    private void EmitMatcher(Matcher m, string fail)
    {
        if (m.Operator is InSet s)
        {
            var layout = Layout(s.Set, m.Key, requireVerdicts: false);
            if (s.Negated)
            {
                var miss = _asm.NewLabel("miss");
                EmitLookup(layout, m.Key, miss);
                _asm.Emit(Asm.Ja(fail));
                _asm.Label(miss);
            }
            else
            {
                EmitLookup(layout, m.Key, fail);
            }
            return;
        }
        if (m.Key.IsConcatenation)
        {
            EmitConcatCompare(m, fail);
            return;
        }
        var field = m.Key.Fields[0];
        var parts = Parts(field);
        if (parts.Count > 1 && m.Operator is not (Compare { Op: CompareOp.Eq or CompareOp.Ne } or Masked))
            throw new CodegenException($"'{m}': only ==, != and masks are supported on {field.Bits}-bit fields");
        var (constant, mask, negate) = m.Operator switch
        {
            Compare c => (c.Value, (Value?)null, c.Op == CompareOp.Ne),
            Masked k => (k.Value, k.Mask, k.Negated),
            InRange r => (r.From, null, false),
            _ => throw new CodegenException($"unsupported operator in '{m}'"),
        };

        if (parts.Count == 1)
        {
            LoadField(field, parts[0], R0, fail);
            var c = Chunk(constant, parts[0]);
            switch (m.Operator)
            {
                case Compare cmp:
                    var op = cmp.Op switch
                    {
                        // jump to fail on the opposite condition
                        CompareOp.Eq => JumpOp.Jne, CompareOp.Ne => JumpOp.Jeq, CompareOp.Lt => JumpOp.Jge,
                        CompareOp.Gt => JumpOp.Jle, CompareOp.Le => JumpOp.Jgt, _ => JumpOp.Jlt,
                    };
                    JumpConst(op, R0, c, fail);
                    break;
                case Masked k:
                    AndConst(R0, Chunk(k.Mask, parts[0]));
                    JumpConst(k.Negated ? JumpOp.Jeq : JumpOp.Jne, R0, c, fail);
                    break;
                case InRange r when !r.Negated:
                    JumpConst(JumpOp.Jlt, R0, Chunk(r.From, parts[0]), fail);
                    JumpConst(JumpOp.Jgt, R0, Chunk(r.To, parts[0]), fail);
                    break;
                case InRange r:
                    var outside = _asm.NewLabel("outside");
                    JumpConst(JumpOp.Jlt, R0, Chunk(r.From, parts[0]), outside);
                    JumpConst(JumpOp.Jle, R0, Chunk(r.To, parts[0]), fail);
                    _asm.Label(outside);
                    break;
            }
            return;
        }

        // Wide fields (ip6 addresses, interface names): all parts equal, or (negated) any part differs.
        var differs = negate ? _asm.NewLabel("differs") : fail;
        foreach (var part in parts)
        {
            LoadField(field, part, R0, fail);
            if (mask is not null) AndConst(R0, Chunk(mask, part));
            JumpConst(JumpOp.Jne, R0, Chunk(constant, part), differs);
        }
        if (negate)
        {
            _asm.Emit(Asm.Ja(fail));
            _asm.Label(differs);
        }
    }

    private void EmitConcatCompare(Matcher m, string fail)
    {
        if (m.Operator is not Compare { Op: CompareOp.Eq or CompareOp.Ne } cmp)
            throw new CodegenException($"'{m}': concatenations support only == and !=");
        var at = 0;
        var matchers = new List<Matcher>();
        foreach (var f in m.Key.Fields)
        {
            matchers.Add(Matcher.Eq(f, new Value(cmp.Value.Bytes.AsSpan().Slice(at, f.Bytes))));
            at += f.Bytes;
        }
        if (cmp.Op == CompareOp.Eq)
        {
            foreach (var x in matchers) EmitMatcher(x, fail);
            return;
        }
        // != : fails only if every field is equal.
        var differs = _asm.NewLabel("differs");
        foreach (var x in matchers) EmitMatcher(x, differs);
        _asm.Emit(Asm.Ja(fail));
        _asm.Label(differs);
    }

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
            case MetaField { Key: MetaKey.IifName or MetaKey.OifName } n:
            {
                var at = _flavor.EmitInterfaceName(_asm, n.Key, fail);
                LoadNumber(at, part.Start, part.Count, dst);
                return;
            }
            case MetaField meta:
                LoadMeta(meta.Key, dst, fail);
                return;
            case PayloadField p:
            {
                var at = Access(p, fail);
                var aligned = p.OffsetBits % 8 == 0 && p.LengthBits % 8 == 0;
                if (aligned)
                {
                    LoadNumber(at, part.Start, part.Count, dst);
                    return;
                }
                var first = p.OffsetBits / 8;
                var span = (p.OffsetBits + p.LengthBits + 7) / 8 - first;
                LoadNumber(at, 0, span, dst);
                var shift = span * 8 - (p.OffsetBits % 8 + p.LengthBits);
                if (shift > 0) _asm.Emit(Asm.Rsh64Imm(dst, shift));
                if (p.LengthBits < 64) AndConst(dst, (1UL << p.LengthBits) - 1);
                return;
            }
        }
        throw new CodegenException($"unsupported field {f}");
    }

    private BytesRef Access(PayloadField p, string fail)
    {
        short? slot = p.Base switch
        {
            PayloadBase.Link when !_flavor.HasLinkLayer =>
                throw new CodegenException($"{p}: no link-layer header at netfilter hooks"),
            PayloadBase.Link => null,
            PayloadBase.Network => L3Off,
            _ => L4Off,
        };
        if (_flavor is TcFlavor && p.Base == PayloadBase.Link && (p.OffsetBits + p.LengthBits > 96 || p.Protocol == HeaderProtocol.Vlan))
            throw new CodegenException($"{p}: at TC hooks the VLAN tag is already out of the packet; use meta protocol / vlan matches at XDP");
        var first = p.OffsetBits / 8;
        var span = (p.OffsetBits + p.LengthBits + 7) / 8 - first;
        return _flavor.EmitAccess(_asm, slot, first, span, fail);
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

    private void LoadMeta(MetaKey key, Register dst, string fail)
    {
        switch (key)
        {
            case MetaKey.L4Proto:
                _asm.Emit(Asm.LdxW(R1, R10, Flags), Asm.And64Imm(R1, HasL4Proto), Asm.JeqImm(R1, 0, fail),
                    Asm.LdxW(dst, R10, L4Proto));
                return;
            case MetaKey.Protocol:
                _asm.Emit(Asm.LdxW(dst, R10, L3Proto));
                return;
            case MetaKey.NfProto:
                // netdev: NFPROTO_NETDEV; inet ingress and netfilter programs: from the network protocol.
                var fixedNf = _flavor is NetfilterFlavor ? _flavor.FixedNfProto : _currentNfProto;
                if (fixedNf is { } nf) { _asm.Emit(Asm.Mov64Imm(dst, nf)); return; }
                var done = _asm.NewLabel("nfdone");
                _asm.Emit(Asm.LdxW(R1, R10, L3Proto), Asm.Mov64Imm(dst, 2), Asm.JeqImm(R1, EtherTypeIpv4, done),
                    Asm.Mov64Imm(dst, 10), Asm.JeqImm(R1, EtherTypeIpv6, done), Asm.Ja(fail));
                _asm.Label(done);
                return;
            case MetaKey.Length:
                EmitLength(dst);
                return;
        }
        if (!_flavor.EmitMeta(_asm, key, dst, fail))
            throw new CodegenException($"meta {key.ToString().ToLowerInvariant()} is not available at {_flavor.ProgramType} hooks");
    }

    /// <summary>Builds the map key for the fields on the stack and looks it up; R0 = value pointer, or jump to miss.</summary>
    private void EmitLookup(SetLayout layout, MatchKey key, string miss)
    {
        var at = Key + layout.DataOffset;
        // Zero the key first so no stack byte of it is uninitialised, then the LPM prefix length (all data bits).
        for (var i = 0; i < layout.KeySize; i += 8) _asm.Emit(Asm.StDW(R10, (short)(Key + i), 0));
        if (layout.IsLpm) _asm.Emit(Asm.StW(R10, Key, layout.DataBytes * 8));
        foreach (var f in key.Fields)
        {
            StoreField(f, (short)at, miss);
            at += f.Bytes;
        }
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.LoadMapFd(R1, SetMapName(layout.Set.Name)),
            Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, miss));
    }

    private void StoreField(Field f, short dst, string fail)
    {
        if (f is PayloadField { OffsetBits: var o, LengthBits: var l } p && o % 8 == 0 && l % 8 == 0)
        {
            CopyBytes(Access(p, fail), dst, f.Bytes);
            return;
        }
        if (f is MetaField { Key: MetaKey.IifName or MetaKey.OifName } n)
        {
            if (_flavor.StaticInterfaceName(n.Key) is { } s)
            {
                if (s.Name is null) { _asm.Emit(Asm.Ja(fail)); return; }
                for (var i = 0; i < 16; i += 4)
                    _asm.Emit(Asm.StW(R10, (short)(dst + i), BinaryPrimitives.ReadInt32LittleEndian(s.Name.Bytes.AsSpan().Slice(i))));
                return;
            }
            CopyBytes(_flavor.EmitInterfaceName(_asm, n.Key, fail), dst, 16);
            return;
        }
        if (f.Bits > 64) throw new CodegenException($"{f} cannot be a set key");
        LoadField(f, new Part(0, f.Bytes), R0, fail);
        // Store the number big-endian, one byte at a time (the key may be unaligned).
        for (var i = 0; i < f.Bytes; i++)
        {
            _asm.Emit(Asm.Mov64Reg(R2, R0));
            var shift = 8 * (f.Bytes - 1 - i);
            if (shift > 0) _asm.Emit(Asm.Rsh64Imm(R2, shift));
            _asm.Emit(Asm.StxB(R10, (short)(dst + i), R2));
        }
    }

    private void CopyBytes(BytesRef from, short dst, int count)
    {
        var pos = 0;
        while (pos < count)
        {
            var size = Math.Min(ChunkSize(from.Offset + pos, count - pos), ChunkSize(dst + pos, count - pos));
            var sz = size switch { 1 => Size.B, 2 => Size.H, 4 => Size.W, _ => Size.DW };
            _asm.Emit(Asm.Ldx(sz, R0, from.Pointer, (short)(from.Offset + pos)), Asm.Stx(sz, R10, (short)(dst + pos), R0));
            pos += size;
        }
    }
}
