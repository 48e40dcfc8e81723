using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// `add|update|delete @s { KEY [timeout T] }` as nft_dynset_eval on an nft_set_hash (rhash) set. Both copies of
/// the set map are written (the one this run's generation reads decides), so the control plane, which applies
/// only its own changes to each copy, never loses a packet-path element it did not delete itself.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>The element value built for an insert (code, the expiry at <see cref="SetLayout.ExpiresOffset"/>, the timeout at <see cref="SetLayout.TimeoutOffset"/>).</summary>
    const short UpdateValue = Scratch;
    /// <summary>jiffies64 read once per statement (u64), and the other copy's slot (u32).</summary>
    const short UpdateNow = Scratch + 24, OtherCopy = Scratch + 32;

    private void EmitSetUpdate(SetUpdateStatement u, string next)
    {
        if (!u.Stateful.IsEmpty)
            throw new CodegenException($"statement '{u}': per-element statements of a set written from the packet path are not supported by the BPF backend");
        if (u.Data is not null)
            throw new CodegenException($"statement '{u}': maps written from the packet path are not supported by the BPF backend");
        var layout = Layout(u.Set, u.Key, requireVerdicts: false);
        if (layout.HasElementStatements)
            throw new CodegenException($"statement '{u}': set '{u.Set}' has elements with statements, which the BPF backend does not write from the packet path");
        if (!layout.Set.PacketWritten)
            throw new CodegenException($"statement '{u}': set '{u.Set}' was compiled as not written from the packet path");
        if (!_generationLoaded) throw new CodegenException($"set '{u.Set}': written by a program that did not read the generation");
        if (u.Timeout is not null && !layout.HasTimeouts)
            throw new CodegenException($"statement '{u}': set '{u.Set}' has no timeouts");
        var map = SetMapName(layout.Set.Name);
        // a key the packet lacks: the register load before nft_dynset already broke the rule
        EmitKey(layout, u.Key, next);
        _asm.Emit(Asm.LdxW(R1, R10, Generation), Asm.Alu64Imm(AluOp.Xor, R1, 1), Asm.StxW(R10, OtherCopy, R1));
        if (u.Op == SetUpdateOp.Delete)
        {
            // nft_rhash_delete marks a live element dead and never breaks the rule
            EmitOnCopy(map, Generation, copy => _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
                Asm.Call(HelperFunc.MapDeleteElem)));
            EmitOnCopy(map, OtherCopy, copy => _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
                Asm.Call(HelperFunc.MapDeleteElem)));
            return;
        }
        var timeout = layout.HasTimeouts ? Jiffies(u.Timeout) : 0;
        if (layout.HasTimeouts) _asm.Emit(Asm.Call(HelperFunc.Jiffies64), Asm.StxDW(R10, UpdateNow, R0));
        var insert = _asm.NewLabel("dynins");
        var done = _asm.NewLabel("dyndone");
        // nft_rhash_update: a live element (an expired one does not compare equal) is kept
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Generation), Asm.LoadMapFd(R1, map),
            Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, next), Asm.Mov64Reg(R1, R0),
            Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, insert));
        if (layout.HasTimeouts)
        {
            // expiry 0: the element has no NFT_SET_EXT_EXPIRATION, it is live and `update` leaves it alone
            _asm.Emit(Asm.LdxDW(R1, R0, SetLayout.ExpiresOffset), Asm.JeqImm(R1, 0, done),
                Asm.LdxDW(R2, R10, UpdateNow), Asm.Sub64Reg(R2, R1), Asm.JumpImm(JumpOp.Jsge, R2, 0, insert));
            if (u.Op == SetUpdateOp.Update)
            {
                // the live element's expiration becomes now + timeout, in both copies (written in place, as the kernel's ext)
                _asm.Emit(Asm.LdxDW(R1, R10, UpdateNow), Asm.LoadImm64(R2, (long)timeout), Asm.Add64Reg(R1, R2),
                    Asm.StxDW(R0, SetLayout.ExpiresOffset, R1), Asm.StxDW(R10, UpdateValue + SetLayout.ExpiresOffset, R1));
                EmitOnCopy(map, OtherCopy, copy =>
                {
                    var absent = _asm.NewLabel("dynabsent");
                    _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapLookupElem),
                        Asm.JeqImm(R0, 0, absent), Asm.LdxDW(R1, R10, UpdateValue + SetLayout.ExpiresOffset),
                        Asm.StxDW(R0, SetLayout.ExpiresOffset, R1));
                    _asm.Label(absent);
                });
            }
        }
        _asm.Emit(Asm.Ja(done));
        _asm.Label(insert);
        // nft_dynset_new: a new element (or one replacing an expired one) expires at now + timeout, or never
        for (var i = 0; i < layout.ValueSize; i += 4) _asm.Emit(Asm.StW(R10, (short)(UpdateValue + i), 0));
        _asm.Emit(Asm.StW(R10, UpdateValue, 1));
        if (layout.HasTimeouts && timeout > 0)
            _asm.Emit(Asm.LdxDW(R1, R10, UpdateNow), Asm.LoadImm64(R2, (long)timeout), Asm.Add64Reg(R1, R2),
                Asm.StxDW(R10, UpdateValue + SetLayout.ExpiresOffset, R1));
        // the element's own timeout (NFT_SET_EXT_TIMEOUT), listed as `timeout T`
        if (layout.HasElementTimeouts && timeout > 0)
            _asm.Emit(Asm.LoadImm64(R1, (long)timeout), Asm.StxDW(R10, UpdateValue + SetLayout.TimeoutOffset, R1));
        // the copy packets read decides: a full set (E2BIG: the set's size) breaks the rule, as nft_dynset's NFT_BREAK
        EmitOnCopy(map, Generation, copy => _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, UpdateValue), Asm.Mov64Imm(R4, 0), Asm.Call(HelperFunc.MapUpdateElem),
            Asm.JneImm(R0, 0, next)), missing: next);
        EmitOnCopy(map, OtherCopy, copy => _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key),
            Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, UpdateValue), Asm.Mov64Imm(R4, 0), Asm.Call(HelperFunc.MapUpdateElem)));
        _asm.Label(done);
    }

    /// <summary>Looks up the copy whose slot is at stack offset <paramref name="slot"/> and runs <paramref name="body"/> with it in R1's source register R0; skips (or jumps to missing) without one.</summary>
    private void EmitOnCopy(string map, short slot, Action<Register> body, string? missing = null)
    {
        var skip = missing ?? _asm.NewLabel("dyncopy");
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, slot), Asm.LoadMapFd(R1, map), Asm.Call(HelperFunc.MapLookupElem),
            Asm.JeqImm(R0, 0, skip));
        body(R0);
        if (missing is null) _asm.Label(skip);
    }

    /// <summary>A timeout in jiffies as nf_msecs_to_jiffies64 rounds it (down); none is 0.</summary>
    private static ulong Jiffies(TimeSpan? timeout) => timeout is { } t ? KernelClock.ToJiffies((long)t.TotalMilliseconds) : 0;
}
