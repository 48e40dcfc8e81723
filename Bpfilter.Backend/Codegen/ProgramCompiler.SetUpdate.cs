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
    /// <summary>
    /// The element value built for an insert (code, the expiry at <see cref="SetLayout.ExpiresOffset"/>, the
    /// timeout at <see cref="SetLayout.TimeoutOffset"/>, the state of its statements), at most the scratch buffer.
    /// </summary>
    const short UpdateValue = Scratch;
    const short UpdateNow = DynsetNow, OtherCopy = DynsetOtherCopy;

    private void EmitSetUpdate(SetUpdateStatement u, string next)
    {
        var layout = Layout(u.Set, u.Key, requireVerdicts: false);
        // the list this rule gives the elements it makes, by its tag (none: -1, the element runs no statements)
        var made = u.Stateful ?? layout.Set.PacketStatements;
        var tag = layout.Set.TagOf(made);
        if (!made.IsEmpty && (tag < 0 || !layout.Set.RuleLists.Contains(made)))
            throw new CodegenException($"statement '{u}': set '{u.Set}' was compiled without the statement list this rule gives its elements");
        if ((u.Data is null) != (layout.MapDataBytes == 0))
            throw new CodegenException($"statement '{u}': the data does not match map '{u.Set}'");
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
        // the data register is loaded before nft_dynset too: written where the new element's value takes it
        if (u.Data is not null) EmitMapData(layout, u.Data, next);
        _asm.Emit(Asm.LdxW(R1, R10, Generation), Asm.Alu64Imm(AluOp.Xor, R1, 1), Asm.StxW(R10, OtherCopy, R1));
        if (u.Op == SetUpdateOp.Delete)
        {
            EmitDelete(layout, map);
            return;
        }
        // what `update` renews an expiring element to, and the timeout of the elements this rule makes (none when
        // nft_dynset_init gave its template no timeout: see SetUpdateStatement.NewElementsExpire)
        var renewal = layout.HasTimeouts ? Jiffies(u.Timeout) : 0;
        var timeout = u.NewElementsExpire ? renewal : 0;
        if (layout.HasTimeouts) _asm.Emit(Asm.Call(HelperFunc.Jiffies64), Asm.StxDW(R10, UpdateNow, R0));
        var insert = _asm.NewLabel("dynins");
        var replace = _asm.NewLabel("dynrepl");
        var done = _asm.NewLabel("dyndone");
        // nft_rhash_update: a live element (an expired one does not compare equal) is kept
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Generation), Asm.LoadMapFd(R1, map),
            Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, next), Asm.Mov64Reg(R1, R0),
            Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, insert));
        if (layout.HasTimeouts) EmitFoundElement(u, layout, map, renewal, replace, done);
        _asm.Emit(Asm.Ja(done));
        // statements skipped: a packet that gave up waiting for another CPU's replacement (see EmitReplace)
        var uncounted = layout.HasTimeouts ? _asm.NewLabel("dynuncounted") : done;
        if (layout.HasTimeouts) EmitReplace(u, layout, tag, map, timeout, renewal, replace, next, done, uncounted);
        // nft_dynset_new on a key no element holds: created in the copy packets read only when still absent there
        // (BPF_NOEXIST), as the kernel's insert keeps the first of two CPUs' elements; the second (EEXIST) runs its
        // statements on the first's. An element with statements reaches the other copy through EmitPacketStatements
        // (its code says it has not yet), so the packet that writes it there and those that find it agree on its state.
        _asm.Label(insert);
        EmitNewElement(layout, tag, timeout, ElementStatementCode.StatementsNotInOtherCopy);
        // the copy packets read decides: a full set (E2BIG: the set's size) breaks the rule, as nft_dynset's NFT_BREAK.
        // nft_rhash_update gives the loser of two CPUs the winner's element and nft_dynset_eval renews it for `update`:
        // the loser (EEXIST) takes the found element's path (renewed; replaced, as any packet would, if already expired)
        var lost = u.Op == SetUpdateOp.Update && layout.HasTimeouts ? _asm.NewLabel("dynlost") : done;
        if (tag < 0) EmitInsertBothCopies(map, lost, next);
        else EmitWriteCopy(map, Generation, BpfMap.NoExist, missing: next, Asm.JeqImm(R0, -EExist, lost), Asm.JneImm(R0, 0, next));
        if (lost != done)
        {
            _asm.Emit(Asm.Ja(done));
            _asm.Label(lost);
            // deleted again in between (the control plane, `delete @s` on another CPU): nothing left to renew
            EmitLookupCopy(map, Generation, done);
            EmitFoundElement(u, layout, map, renewal, replace, done);
        }
        _asm.Label(done);
        if (layout.HasPacketStatements)
        {
            // nft_dynset_eval then runs the element's statements (nft_set_elem_update_expr), new or found, add or update: the
            // element's own list (its tag's), whatever this rule gives new elements
            var gone = _asm.NewLabel("dyngone");
            EmitLookupCopy(map, Generation, gone);
            EmitPacketStatements(layout, next);
            _asm.Label(gone);
        }
        if (uncounted != done) _asm.Label(uncounted);
    }

    /// <summary>
    /// The live element a packet found (R0: its value in the copy packets read) in a set with timeouts: kept with no
    /// expiry (no NFT_SET_EXT_EXPIRATION: `update` leaves it alone), replaced when expired (to <paramref name="replace"/>),
    /// else renewed for `update` to now + timeout in both copies; then to <paramref name="done"/>.
    /// </summary>
    private void EmitFoundElement(SetUpdateStatement u, SetLayout layout, string map, ulong timeout, string replace, string done)
    {
        _asm.Emit(Asm.LdxDW(R1, R0, SetLayout.ExpiresOffset), Asm.JeqImm(R1, 0, done),
            Asm.LdxDW(R2, R10, UpdateNow), Asm.Sub64Reg(R2, R1), Asm.JumpImm(JumpOp.Jsge, R2, 0, replace));
        if (u.Op != SetUpdateOp.Update) return;
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

    /// <summary>
    /// The word at value offset 4 of an element the packet path gave statements (0: none, the control plane's), bits 0
    /// and 1; bits <see cref="SetLayout.TagShift"/> and up hold the element's tag, its statement list's index in
    /// <see cref="Set.ElementLists"/>, fixed for the element's life.
    /// </summary>
    static class ElementStatementCode
    {
        /// <summary>Bit 0: the element has statements; its state follows the code, expiry and timeout.</summary>
        public const int Statements = 1;
        /// <summary>Bit 1 as well: made in the copy packets read, not yet written to the other (see EmitPacketStatements).</summary>
        public const int StatementsNotInOtherCopy = 3;
        /// <summary>
        /// Bit 30 of the word at value offset 0 (the code: 1 for a packet-written set's element, whose dynset nf_tables
        /// refuses on verdict and object maps), with or without statements: claimed by a packet's `delete @s`, which
        /// takes it from both copies (see EmitDelete).
        /// </summary>
        public const int Deleted = SetLayout.DeleteClaim;
    }

    /// <summary>errno EEXIST, which bpf_map_update_elem returns (negated) for BPF_NOEXIST on a key the map holds.</summary>
    const int EExist = 17;
    /// <summary>errno ENOENT, which bpf_map_update_elem returns (negated) for BPF_EXIST on a key the map lacks.</summary>
    const int ENoEnt = 2;

    /// <summary>
    /// Builds a new element's value at <see cref="UpdateValue"/> as nft_dynset_new makes it: it expires at now + timeout,
    /// or never; its statements start as nft_counter_clone, nft_quota_clone and nft_limit_clone give them (zero, a
    /// fresh stamp) with <paramref name="code"/> and the <paramref name="tag"/> of the making rule's list (-1: none);
    /// a map's data is already in place.
    /// </summary>
    private void EmitNewElement(SetLayout layout, int tag, ulong timeout, int code)
    {
        var zeroed = layout.MapDataBytes > 0 ? layout.MapDataOffset : layout.ValueSize;
        for (var i = 0; i < zeroed; i += 4) _asm.Emit(Asm.StW(R10, (short)(UpdateValue + i), 0));
        _asm.Emit(Asm.StW(R10, UpdateValue, 1));
        // the list this rule gives new elements, by its tag (none: code 0, the element runs no statements)
        if (tag >= 0) _asm.Emit(Asm.StW(R10, UpdateValue + 4, code | tag << SetLayout.TagShift));
        // each limit's born stamp, unique to this element and limit (odd: 0 is none), names its bucket
        if (tag >= 0 && layout.ElementList(tag).Any(s => s is LimitStatement))
        {
            var list = layout.ElementList(tag);
            _asm.Emit(Asm.Call(HelperFunc.KtimeGetNs), Asm.Alu64Imm(AluOp.Lsh, R0, 2));
            for (var i = 0; i < list.Count; i++)
                if (list[i] is LimitStatement)
                    _asm.Emit(Asm.Mov64Reg(R1, R0), Asm.Add64Imm(R1, 2 * i + 1), Asm.StxDW(R10, (short)(UpdateValue + layout.PacketStateOffset(tag, i)), R1));
        }
        if (layout.HasTimeouts && timeout > 0)
            _asm.Emit(Asm.LdxDW(R1, R10, UpdateNow), Asm.LoadImm64(R2, (long)timeout), Asm.Add64Reg(R1, R2),
                Asm.StxDW(R10, UpdateValue + SetLayout.ExpiresOffset, R1));
        // the element's own timeout (NFT_SET_EXT_TIMEOUT), listed as `timeout T`
        if (layout.HasElementTimeouts && timeout > 0)
            _asm.Emit(Asm.LoadImm64(R1, (long)timeout), Asm.StxDW(R10, UpdateValue + SetLayout.TimeoutOffset, R1));
    }

    /// <summary>bpf_map_update_elem(copy at <paramref name="slot"/>, Key, UpdateValue, <paramref name="flags"/>), then <paramref name="then"/> on its result in R0; a missing copy skips (or jumps to <paramref name="missing"/>).</summary>
    private void EmitWriteCopy(string map, short slot, ulong flags, string? missing = null, params Instruction[] then) =>
        EmitOnCopy(map, slot, copy =>
        {
            _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, UpdateValue),
                Asm.Mov64Imm(R4, (int)flags), Asm.Call(HelperFunc.MapUpdateElem));
            _asm.Emit(then);
        }, missing);

    /// <summary>bpf_map_lookup_elem(copy at <paramref name="slot"/>, Key), then <paramref name="then"/> with the element in R0; a missing copy or element jumps to <paramref name="missing"/>.</summary>
    private void EmitLookupCopy(string map, short slot, string missing, params Instruction[] then) =>
        EmitOnCopy(map, slot, copy =>
        {
            _asm.Emit(Asm.Mov64Reg(R1, copy), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, missing));
            _asm.Emit(then);
        }, missing);

    /// <summary>Copies an element's whole value from <paramref name="from"/> (a map value pointer) to the stack at <paramref name="to"/>, through R1.</summary>
    private void EmitCopyValue(SetLayout layout, Register from, short to)
    {
        var i = 0;
        for (; i + 8 <= layout.ValueSize; i += 8) _asm.Emit(Asm.LdxDW(R1, from, (short)i), Asm.StxDW(R10, (short)(to + i), R1));
        for (; i + 4 <= layout.ValueSize; i += 4) _asm.Emit(Asm.LdxW(R1, from, (short)i), Asm.StxW(R10, (short)(to + i), R1));
        for (; i < layout.ValueSize; i++) _asm.Emit(Asm.LdxB(R1, from, (short)i), Asm.StxB(R10, (short)(to + i), R1));
    }

    /// <summary>
    /// A map's data for a new element at its place in the value being built (nft_set_elem_init copies the data
    /// register): a constant's bytes, or the packet field's (a packet without it breaks the rule, to <paramref name="absent"/>).
    /// Only an insert reads it: an existing element keeps its data (nft_rhash_update returns the element found).
    /// </summary>
    private void EmitMapData(SetLayout layout, StatementValue data, string absent)
    {
        var at = (short)(UpdateValue + layout.MapDataOffset);
        switch (data)
        {
            case StatementValue.Immediate { Value: var v } when v.Length == layout.MapDataBytes:
                var bytes = v.Bytes.AsSpan();
                var i = 0;
                for (; i + 4 <= bytes.Length; i += 4)
                    _asm.Emit(Asm.StW(R10, (short)(at + i), System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes[i..])));
                for (; i < bytes.Length; i++) _asm.Emit(Asm.StB(R10, (short)(at + i), bytes[i]));
                break;
            case StatementValue.FromKey { Key.Fields: [PayloadField f] } when f.Bytes == layout.MapDataBytes:
                StoreField(f, at, absent);
                break;
            default:
                throw new CodegenException($"map '{layout.Set.Name}': data '{data}' is not supported by the BPF backend");
        }
    }

    /// <summary>
    /// The statements of an element the packet path added (R0: its value in the copy this run reads; the key at
    /// Key), as nft_set_elem_update_expr runs them: in order, each on the element's own state, the first that
    /// breaks breaks the rule (to <paramref name="fail"/>). A counter adds the packet and its length, a quota
    /// adds the length (atomic64_add_return) and breaks beyond its bytes (`over`: within them). The other copy's
    /// element gets the same additions, so the copy a later generation reads holds the same state (additions
    /// commute: the copies agree whatever the order of CPUs). An element the control plane added has statement
    /// code 0 and none (the kernel's has no expressions).
    /// </summary>
    private void EmitPacketStatements(SetLayout layout, string fail)
    {
        const short live = Scratch, other = Scratch + 8;
        _frameHoldsVerifierState = true; // the elements' pointers are spilled to the frame
        var done = _asm.NewLabel("pstdone");
        var map = SetMapName(layout.Set.Name);
        var inOther = _asm.NewLabel("pstinother");
        _asm.Emit(Asm.LdxW(R1, R0, 4), Asm.Mov64Reg(R2, R1), Asm.Alu64Imm(AluOp.And, R2, ElementStatementCode.Statements), Asm.JeqImm(R2, 0, done),
            Asm.LdxW(R2, R10, Generation), Asm.Alu64Imm(AluOp.Xor, R2, 1), Asm.StxW(R10, OtherCopy, R2),
            Asm.Alu64Imm(AluOp.And, R1, ElementStatementCode.StatementsNotInOtherCopy & ~ElementStatementCode.Statements), Asm.JeqImm(R1, 0, inOther));
        // made by a packet that has not yet written it to the other copy (its own or another CPU's: nft_rhash_update
        // gives a CPU that lost the insert the winner's element): written there as it is, unless there already, before
        // any packet adds to it; a packet then finds it in both copies (or the other copy full), so the state's
        // additions land in both and the copies agree, born stamps included. The code says so only once it is there.
        EmitCopyValue(layout, R0, UpdateValue);
        const int inBoth = ~(ElementStatementCode.StatementsNotInOtherCopy & ~ElementStatementCode.Statements);
        // bit 1 cleared, the tag kept
        _asm.Emit(Asm.LdxW(R1, R10, UpdateValue + 4), Asm.Alu64Imm(AluOp.And, R1, inBoth), Asm.StxW(R10, UpdateValue + 4, R1));
        var written = _asm.NewLabel("pstwritten");
        // bit 1 cleared atomically: a delete's claim in the same element is not written over
        Instruction[] inOtherNow = [Asm.Mov64Imm(R1, inBoth), Asm.AtomicFetchAnd32(R0, 4, R1)];
        EmitWriteCopy(map, OtherCopy, BpfMap.NoExist, null, Asm.JeqImm(R0, 0, written));
        // there already (another CPU's), or the copy full
        EmitLookupCopy(map, Generation, done, inOtherNow);
        _asm.Emit(Asm.Ja(inOther));
        // written here: an element on its way out (claimed by `delete @s`, or gone) takes the write back, and the packet
        // runs no statements on it (added to the element before the delete took it)
        _asm.Label(written);
        EmitTakeBackIfDeleted(map, inOther, done, inOtherNow);
        _asm.Label(inOther);
        _asm.Emit(Asm.StxDW(R10, live, R0));
        var noOther = _asm.NewLabel("pstnoother");
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, OtherCopy), Asm.LoadMapFd(R1, map),
            Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, noOther), Asm.Mov64Reg(R1, R0),
            Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapLookupElem));
        _asm.Label(noOther);
        _asm.Emit(Asm.StxDW(R10, other, R0));
        if (layout.HasTimeouts)
        {
            // claimed by now (it expired since the packet found it and another CPU replaces it, see EmitReplace): the
            // packet counts on the old element alone, as the kernel's packet does on the element it found. Unclaimed
            // here, the other copy's element was looked up before the claim, so before the claiming CPU writes the new
            // one there (loads are not reordered with loads on x86): the additions land on the old element in both
            // copies, or on the current one in both
            var unclaimed = _asm.NewLabel("pstunclaimed");
            _asm.Emit(Asm.LdxDW(R1, R10, live), Asm.LdxDW(R1, R1, SetLayout.ExpiresOffset), Asm.Add64Imm(R1, -ReplacementClaim.Base),
                Asm.JgeImm(R1, ReplacementClaim.Span, unclaimed), Asm.StDW(R10, other, 0));
            _asm.Label(unclaimed);
        }
        var lists = layout.Set.ElementLists;
        if (lists.Count == 1)
        {
            EmitElementList(layout, 0, fail);
            _asm.Label(done);
            return;
        }
        // the element's own list, by its tag
        for (var tag = 0; tag < lists.Count; tag++)
        {
            var nextTag = _asm.NewLabel("psttag");
            _asm.Emit(Asm.LdxDW(R1, R10, live), Asm.LdxW(R1, R1, 4), Asm.Alu64Imm(AluOp.Rsh, R1, SetLayout.TagShift), Asm.JneImm(R1, tag, nextTag));
            EmitElementList(layout, tag, fail);
            _asm.Emit(Asm.Ja(done));
            _asm.Label(nextTag);
        }
        _asm.Label(done);
    }

    /// <summary>The statements of list <paramref name="tag"/> on the element at R10 + Scratch (this copy) and Scratch + 8 (the other copy's, or 0).</summary>
    private void EmitElementList(SetLayout layout, int tag, string fail)
    {
        const short live = Scratch, other = Scratch + 8;
        var list = layout.ElementList(tag);
        for (var i = 0; i < list.Count; i++)
        {
            var off = (short)layout.PacketStateOffset(tag, i);
            var skip = _asm.NewLabel("pstskip");
            EmitLength(R2);
            switch (list[i])
            {
                case CounterStatement:
                    _asm.Emit(Asm.Mov64Imm(R3, 1), Asm.LdxDW(R1, R10, live), Asm.AtomicAdd64(R1, off, R3), Asm.AtomicAdd64(R1, (short)(off + 8), R2),
                        Asm.LdxDW(R1, R10, other), Asm.JeqImm(R1, 0, skip), Asm.AtomicAdd64(R1, off, R3), Asm.AtomicAdd64(R1, (short)(off + 8), R2));
                    _asm.Label(skip);
                    break;
                case QuotaStatement q:
                    _asm.Emit(Asm.LdxDW(R1, R10, other), Asm.JeqImm(R1, 0, skip), Asm.AtomicAdd64(R1, off, R2));
                    _asm.Label(skip);
                    _asm.Emit(Asm.Mov64Reg(R3, R2), Asm.LdxDW(R1, R10, live), Asm.AtomicFetchAdd64(R1, off, R3), Asm.Add64Reg(R3, R2),
                        Asm.LoadImm64(R4, (long)q.Bytes), q.Over ? Asm.JleReg(R3, R4, fail) : Asm.JgtReg(R3, R4, fail));
                    break;
                case LimitStatement l:
                    EmitElementLimit(layout, l, off, fail);
                    break;
                default:
                    throw new CodegenException($"set '{layout.Set.Name}': statement '{list[i]}' of packet-path elements is not supported by the BPF backend");
            }
        }
    }

    /// <summary>
    /// nft_limit_eval on the element's own bucket (R10 + live: the element's value in the copy this run reads; its born
    /// stamp at <paramref name="born"/>): the bucket map's entry (key, stamp), made full with last = now as
    /// nft_limit_clone makes it when the element has none yet (BPF_NOEXIST: another CPU may make it first, then
    /// that one is taken), then the token bucket under its lock as a global limit's.
    /// </summary>
    private void EmitElementLimit(SetLayout layout, LimitStatement l, short born, string fail)
    {
        const short live = Scratch, frame = Scratch + 16, made = Scratch + 40;
        var buckets = Loader.ElementBuckets.Name(SetMapName(layout.Set.Name));
        var have = _asm.NewLabel("bktfound");
        EmitBucketKeyPad(layout);
        _asm.Emit(Asm.LdxDW(R1, R10, live), Asm.LdxDW(R1, R1, born), Asm.StxDW(R10, BornSlot(layout), R1));
        EmitLimitCost(l, frame + 16);
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.LoadMapFd(R1, buckets), Asm.Call(HelperFunc.MapLookupElem),
            Asm.JneImm(R0, 0, have));
        _asm.Emit(Asm.Call(HelperFunc.KtimeGetNs), Asm.StDW(R10, made, 0),
            Asm.StxDW(R10, (short)(made + Loader.LimitMap.Last), R0), Asm.LoadImm64(R1, (long)l.Max),
            Asm.StxDW(R10, (short)(made + Loader.LimitMap.Tokens), R1),
            Asm.LoadMapFd(R1, buckets), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Mov64Reg(R3, R10), Asm.Add64Imm(R3, made),
            Asm.Mov64Imm(R4, 1 /* BPF_NOEXIST */), Asm.Call(HelperFunc.MapUpdateElem),
            Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.LoadMapFd(R1, buckets), Asm.Call(HelperFunc.MapLookupElem),
            Asm.JneImm(R0, 0, have));
        // no room (beyond the map's bound, see SetLayout.BucketMaxEntries): judged as the fresh bucket's first packet, within
        var after = _asm.NewLabel("bktnone");
        _asm.Emit(l.Over ? Asm.Ja(fail) : Asm.Ja(after));
        _asm.Label(have);
        EmitTokenBucket(l, fail, frame);
        _asm.Label(after);
    }

    /// <summary>Where the born stamp of a bucket key sits on the stack: after the element's key at <see cref="Key"/>, 8-aligned.</summary>
    private static short BornSlot(SetLayout layout) => (short)(Key + layout.BucketKeySize - 8);

    /// <summary>Zeroes the bytes between the element's key and the stamp (a hash key is hashed whole).</summary>
    private void EmitBucketKeyPad(SetLayout layout)
    {
        for (var i = layout.KeySize; i < layout.BucketKeySize - 8; i++) _asm.Emit(Asm.StB(R10, (short)(Key + i), 0));
    }

    /// <summary>
    /// Stores the born stamp of the first limit of the element whose value R0 points to at <see cref="BornSlot"/>: at its
    /// tag's offset (0 for an element whose list has no limit, or without statements: no bucket's stamp).
    /// </summary>
    private void EmitLoadBorn(SetLayout layout)
    {
        var offsets = layout.BornOffsets;
        if (offsets.Count == 1)
        {
            _asm.Emit(Asm.LdxDW(R1, R0, (short)offsets[0][0]), Asm.StxDW(R10, BornSlot(layout), R1));
            return;
        }
        var end = _asm.NewLabel("bornend");
        _asm.Emit(Asm.StDW(R10, BornSlot(layout), 0), Asm.LdxW(R1, R0, 4), Asm.Mov64Reg(R2, R1), Asm.Alu64Imm(AluOp.And, R2, ElementStatementCode.Statements),
            Asm.JeqImm(R2, 0, end), Asm.Alu64Imm(AluOp.Rsh, R1, SetLayout.TagShift));
        for (var tag = 0; tag < offsets.Count; tag++)
        {
            if (offsets[tag].Count == 0) continue;
            var nextTag = _asm.NewLabel("borntag");
            _asm.Emit(Asm.JneImm(R1, tag, nextTag), Asm.LdxDW(R2, R0, (short)offsets[tag][0]), Asm.StxDW(R10, BornSlot(layout), R2), Asm.Ja(end));
            _asm.Label(nextTag);
        }
        _asm.Label(end);
    }

    /// <summary>
    /// Deletes the element's buckets, the first limit's stamp at <see cref="BornSlot"/>: the others' follow from it (2 per
    /// statement index). With several lists the stamp alone says which: ktime * 4 + 2 * index + 1 for at most 2 statements,
    /// so the element's stamps are its base (the stamp without its low 2 bits) + 1 and + 3; a stamp its list does not hold
    /// names no bucket (the base is the element's alone), and a stamp of 0 (no limit) neither.
    /// </summary>
    private void EmitDeleteBuckets(SetLayout layout)
    {
        var buckets = Loader.ElementBuckets.Name(SetMapName(layout.Set.Name));
        if (layout.BornOffsets.Count > 1)
        {
            var none = _asm.NewLabel("bktnone");
            _asm.Emit(Asm.LdxDW(R1, R10, BornSlot(layout)), Asm.JeqImm(R1, 0, none), Asm.Alu64Imm(AluOp.And, R1, ~3), Asm.Add64Imm(R1, 1),
                Asm.StxDW(R10, BornSlot(layout), R1));
            _asm.Emit(Asm.LoadMapFd(R1, buckets), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapDeleteElem));
            _asm.Emit(Asm.LdxDW(R1, R10, BornSlot(layout)), Asm.Add64Imm(R1, 2), Asm.StxDW(R10, BornSlot(layout), R1));
            _asm.Emit(Asm.LoadMapFd(R1, buckets), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapDeleteElem));
            _asm.Label(none);
            return;
        }
        var statements = layout.ElementList(0);
        var indices = Enumerable.Range(0, statements.Count).Where(i => statements[i] is LimitStatement).ToList();
        for (var j = 0; j < indices.Count; j++)
        {
            if (j > 0)
                _asm.Emit(Asm.LdxDW(R1, R10, BornSlot(layout)), Asm.Add64Imm(R1, 2 * (indices[j] - indices[j - 1])), Asm.StxDW(R10, BornSlot(layout), R1));
            _asm.Emit(Asm.LoadMapFd(R1, buckets), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Key), Asm.Call(HelperFunc.MapDeleteElem));
        }
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
