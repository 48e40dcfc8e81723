using System.Buffers.Binary;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Set membership and map lookups: the key is built on the stack field by field, then looked up.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>`key @set` / `key != @set`: one lookup in the set's map.</summary>
    private void EmitSetMatcher(MatchKey key, InSet s, string fail)
    {
        var layout = Layout(s.Set, key, requireVerdicts: false);
        // `!= @s` runs no element's statements (nft_lookup_eval: a found element breaks, a missing one has none)
        if (s.Negated)
        {
            var miss = _asm.NewLabel("miss");
            // a key the packet lacks (a header too short, no conntrack entry) fails the rule, also for `!=`
            // (NFT_BREAK): only a key that was read and is not in the set matches
            EmitLookup(layout, key, miss, absent: fail);
            _asm.Emit(Asm.Ja(fail));
            _asm.Label(miss);
        }
        else
        {
            EmitLookup(layout, key, fail);
            EmitElementStatements(layout, fail);
            if (layout.HasPacketStatements) EmitPacketStatements(layout, fail);
        }
    }

    /// <summary>
    /// The found element's statements (R0: its value), as nft_set_elem_update_expr runs them for every packet
    /// a lookup matched: in order, the first that breaks (a limit beyond its rate, a quota beyond its bytes)
    /// ends them and breaks the rule (to <paramref name="fail"/>). The statement code after the element's code
    /// picks the compiled list (0: none), the slots after the expiry name each statement's state. The first
    /// statement's slot is read from the value (R0, no call made yet); the later ones' are copied to the key
    /// buffer first, no longer needed, as the statements' helper calls clobber R0-R5 (none: a set whose
    /// elements hold one statement, e.g. a grouped run's counters, copies nothing).
    /// </summary>
    private void EmitElementStatements(SetLayout layout, string fail)
    {
        if (!layout.HasElementStatements) return;
        var done = _asm.NewLabel("estdone");
        _asm.Emit(Asm.LdxW(R1, R0, 4));
        var longest = layout.StatementShapes.Max(s => s.Count);
        for (var i = 1; i < longest; i++)
            _asm.Emit(Asm.LdxW(R2, R0, (short)(layout.SlotsOffset + 4 * i)), Asm.StxDW(R10, (short)(Key + 8 * i), R2));
        for (var code = 1; code <= layout.StatementShapes.Count; code++)
        {
            var other = _asm.NewLabel("estnext");
            _asm.Emit(Asm.JneImm(R1, code, other));
            var shape = layout.StatementShapes[code - 1];
            for (var i = 0; i < shape.Count; i++)
            {
                _asm.Emit(i == 0 ? Asm.LdxW(R1, R0, (short)layout.SlotsOffset) : Asm.LdxDW(R1, R10, (short)(Key + 8 * i)),
                    Asm.StxW(R10, CounterKey, R1));
                switch (shape[i])
                {
                    case CounterStatement:
                        var counted = _asm.NewLabel("estcount");
                        EmitCountAtKey(counted);
                        _asm.Label(counted);
                        break;
                    case QuotaStatement q: EmitQuotaAtKey(q, fail); break;
                    case LimitStatement l: EmitLimitAtKey(l, fail); break;
                    default: throw new CodegenException($"set '{layout.Set.Name}': element statement '{shape[i]}' is not supported by the BPF backend");
                }
            }
            _asm.Emit(Asm.Ja(done));
            _asm.Label(other);
        }
        _asm.Label(done);
    }

    /// <summary>
    /// Builds the map key for the fields on the stack and looks it up in the copy of the set map this run's
    /// generation names; R0 = value pointer, or jump to miss
    /// (to <paramref name="absent"/>, when given, if the packet lacks a field of the key).
    /// </summary>
    private void EmitLookup(SetLayout layout, MatchKey key, string miss, string? absent = null)
    {
        EmitKey(layout, key, absent ?? miss);
        if (!_generationLoaded) throw new CodegenException($"set '{layout.Set.Name}': looked up by a program that did not read the generation");
        if (ReadsCopiesDirectly(layout)) EmitDirectCopyLookup(layout);
        else
            // the copy of this run's generation (the slot is never empty: a missing copy fails the rule, it is not a miss)
            _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Generation), Asm.LoadMapFd(R1, SetMapName(layout.Set.Name)),
                Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, absent ?? miss), Asm.Mov64Reg(R1, R0),
                Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapLookupElem));
        _asm.Emit(Asm.JeqImm(R0, 0, miss));
        if (layout.HasTimeouts) EmitExpiryCheck(miss);
    }

    /// <summary>
    /// At most this many sets in a program are read through their copies directly (two map references each
    /// instead of the outer map's one): with the classifier maps and the program's own ones that stays
    /// under the kernel's 64 maps per program.
    /// </summary>
    public const int MaxDirectCopySets = 16;

    /// <summary>
    /// Whether lookups in this set name its two copies in the code rather than going through the outer map:
    /// the outer slots hold the same copies for the program's whole life (<c>SetCopies</c>), so choosing by
    /// the generation in code reads the same copy without the outer lookup. Sets the program writes keep
    /// the outer map (their writes go through it).
    /// </summary>
    private bool ReadsCopiesDirectly(SetLayout layout) => !layout.Set.PacketWritten && _needs!.SetCount <= MaxDirectCopySets;

    /// <summary>
    /// R0 = the key's value in the copy this run's generation names, or 0. One call site per copy: the
    /// verifier then knows each call's map and inlines the lookup (a call site shared by two maps is not).
    /// </summary>
    private void EmitDirectCopyLookup(SetLayout layout)
    {
        var second = _asm.NewLabel("copy1");
        var done = _asm.NewLabel("looked_up");
        var name = SetMapName(layout.Set.Name);
        _asm.Emit(Asm.LdxW(R1, R10, Generation), Asm.JneImm(R1, 0, second),
            Asm.LoadMapFd(R1, Loader.SetCopies.CopyName(name, 0)), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.Call(HelperFunc.MapLookupElem), Asm.Ja(done));
        _asm.Label(second);
        _asm.Emit(Asm.LoadMapFd(R1, Loader.SetCopies.CopyName(name, 1)), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.Call(HelperFunc.MapLookupElem));
        _asm.Label(done);
    }

    /// <summary>Builds the map key of the packet's fields at <see cref="RuntimeContext.Key"/>; jumps to absent if the packet lacks one.</summary>
    private void EmitKey(SetLayout layout, MatchKey key, string absent)
    {
        var at = Key + layout.DataOffset;
        // An LPM key is zeroed first so no stack byte of it is uninitialised, then gets its prefix length (all data
        // bits); a hash key is the fields end to end, every byte stored below (or the rule fails before the lookup)
        if (layout.IsLpm)
        {
            for (var i = 0; i < layout.KeySize; i += 8) _asm.Emit(Asm.StDW(R10, (short)(Key + i), 0));
            _asm.Emit(Asm.StW(R10, Key, layout.DataBytes * 8));
        }
        foreach (var f in key.Fields)
        {
            StoreField(f, (short)at, absent);
            at += f.Bytes;
        }
    }

    /// <summary>
    /// An element found (R0: its value) whose expiry has come is a miss, as nft_set_elem_expired makes it:
    /// expired when <c>time_after_eq64(jiffies64, expiration)</c>, i.e. (s64)(now - expiration) >= 0.
    /// R0 is kept; the key buffer, no longer needed, holds it across the helper call.
    /// </summary>
    private void EmitExpiryCheck(string miss)
    {
        var live = _asm.NewLabel("live");
        // spilled to the scratch buffer's end, not the key: the element's statements look the key up again (the
        // set's other copy, a limit's bucket), and the packet statements' own slots start at the scratch buffer's start
        const short element = Scratch + ScratchSize - 16, expiry = Scratch + ScratchSize - 8;
        _asm.Emit(Asm.LdxDW(R1, R0, SetLayout.ExpiresOffset), Asm.JeqImm(R1, 0, live),
            Asm.StxDW(R10, element, R0), Asm.StxDW(R10, expiry, R1), Asm.Call(HelperFunc.Jiffies64),
            Asm.LdxDW(R1, R10, expiry), Asm.Sub64Reg(R0, R1), Asm.JumpImm(JumpOp.Jsge, R0, 0, miss),
            Asm.LdxDW(R0, R10, element));
        _asm.Label(live);
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
        if (f.Bits > 64 && f is not CtField) throw new CodegenException($"{f} cannot be a set key");
        foreach (var part in Parts(f))
        {
            LoadField(f, part, R0, fail);
            // Store the number big-endian, one byte at a time (the key may be unaligned).
            for (var i = 0; i < part.Count; i++)
            {
                _asm.Emit(Asm.Mov64Reg(R2, R0));
                var shift = 8 * (part.Count - 1 - i);
                if (shift > 0) _asm.Emit(Asm.Rsh64Imm(R2, shift));
                _asm.Emit(Asm.StxB(R10, (short)(dst + part.Start + i), R2));
            }
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

    /// <param name="objects">For an object map: the objects the statement reading it dispatches on.</param>
    private SetLayout Layout(string name, MatchKey key, bool requireVerdicts, IReadOnlyList<Statement>? objects = null)
    {
        var set = _ruleset.FindSet(name) ?? throw new CodegenException($"unknown set '{name}'");
        if (set.Key != key && !SameWidths(set.Key, key))
            throw new CodegenException($"set '{name}' has key '{set.Key}', the rule looks up '{key}'");
        if (requireVerdicts && set.Data is not SetData.Verdict)
            throw new CodegenException($"set '{name}' is not a verdict map");
        if (set.Data is SetData.Object != (objects != null))
            throw new CodegenException(objects != null ? $"set '{name}' is not an object map" : $"object map '{name}' is read only by an object statement");
        if (_sets.TryGetValue(name, out var seen) && objects != null && !seen.ObjectCodes.SequenceEqual(objects))
            throw new CodegenException($"object map '{name}' is read with two different object lists");
        if (!_sets.TryGetValue(name, out var layout))
        {
            var verdicts = set.Data is SetData.Verdict
                ? set.Elements.Select(e => e.Verdict ?? throw new CodegenException($"vmap '{name}': element without verdict")).Distinct().ToList()
                : [];
            _sets[name] = layout = new SetLayout(set, verdicts, id => _counterSlots.TryGetValue(id, out var slot) ? slot : null, objects);
            foreach (var e in set.Elements)
                foreach (var id in layout.CountersOf(e)) CounterSlot(id);
            // an element's quota or limit past the shared map's end would find no state: refused, never skipped
            foreach (var st in set.Data is SetData.Object ? [] : set.Elements.SelectMany(e => e.Statements))
                if (st is QuotaStatement q && !Loader.QuotaMap.Holds(q.StateSlot) || st is LimitStatement l && !Loader.LimitMap.Holds(l.StateSlot))
                    throw new CodegenException($"set '{name}': element statement '{st}' is beyond the {Loader.QuotaMap.Capacity} quotas or {Loader.LimitMap.Capacity} limits the BPF backend holds");
        }
        return layout;
    }

    private static bool SameWidths(MatchKey a, MatchKey b) =>
        a.Fields.Count == b.Fields.Count && a.Fields.Zip(b.Fields).All(p => p.First.Bits == p.Second.Bits);
}
