using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// `classify` (<see cref="ClassifierVerdict"/>, maps in <see cref="ClassifierLayout"/>): per field one
/// class lookup (array or LPM trie) and one vector lookup whose pointer is kept on the stack, and the pointer of the
/// field's match-anything vector (the rules without a matcher on it, ORed into the class's at every summary word and
/// every rule word past the folded ones, <see cref="ClassifierLayout.Folded"/>); then the
/// summaries are ANDed (one summary word at a time) and each candidate word (lowest first) is ANDed across
/// the fields (most selective first, stopping at zero) until one is not zero; its lowest bit is the winning
/// rule (counted branch-free: popcount of the bits below it). Candidate words are found by shifting the
/// summary (a byte at a time past empty bytes): with many candidates (rules with wildcards on most fields)
/// that loop is most of the classifier's time.
/// </summary>
public sealed partial class ProgramCompiler
{
    private ClassifierTables _classifiers = new();
    private int _classifierCount;
    private readonly List<ClassifierRecord> _classifierRecords = [];
    private readonly List<ClassifierLayout> _classifierLayouts = [];

    private void EmitClassifier(ClassifierVerdict c, ChainContext ctx, string next, string where)
    {
        if (!_generationLoaded) throw new CodegenException($"{where}: a classifier in a program that did not read the generation");
        if (c.Fields.Count > ClassifierVectors.Length) throw new CodegenException($"{where}: a classifier reads at most {ClassifierVectors.Length} fields");
        _frameHoldsVerifierState = true; // vector pointers and the scan's bounded counter live in the frame
        var layout = new ClassifierLayout(c, $"classifier {_classifierCount++}", CounterSlot, _classifiers.LayoutOf(c));
        _classifierLayouts.Add(layout);
        var at = _classifiers.Add(layout);
        _classifierRecords.Add(new ClassifierRecord(ctx.Chain, c, at, layout.Words, layout.VerdictCodes, false, false));
        foreach (var d in layout.Dimensions) EmitClassVector(d, at.Dimensions[d.Index], next);
        // each field's match-anything vector (its absent class's: the rules without a matcher on it), ORed into the
        // class's vector at every word read; after the class lookups, which use the key buffer its pointers take
        foreach (var d in layout.Dimensions)
        {
            _asm.Emit(Asm.StW(R10, ClassifierKey, at.Dimensions[d.Index].Absent));
            EmitClassifierLookup(ClassifierTables.VectorMap(at.Dimensions[d.Index].Map), ClassifierKey);
            _asm.Emit(Asm.JeqImm(R0, 0, next), Asm.StxDW(R10, ClassifierAnyVectors[d.Index], R0));
        }

        // For each summary word s (on the stack): candidate words are the AND of the fields' summaries.
        var summaries = (layout.Words + 63) / 64;
        var outer = _asm.NewLabel("clssummary");
        var outerNext = _asm.NewLabel("clssummarynext");
        var loop = _asm.NewLabel("clsword");
        var tail = _asm.NewLabel("clsnext");
        var found = _asm.NewLabel("clsfound");
        _asm.Emit(Asm.Mov64Imm(R3, 0), Asm.StxDW(R10, ClassifierWord, R3)); // a spilled register: the verifier tracks the count
        _asm.Label(outer);
        _asm.Emit(Asm.LdxDW(R3, R10, ClassifierWord), Asm.Lsh64Imm(R3, 3));
        EmitFieldWord(0, R1, R3, 0);
        for (var d = 1; d < layout.Dimensions.Count; d++)
        {
            EmitFieldWord(d, R4, R3, 0);
            _asm.Emit(Asm.And64Reg(R1, R4));
        }
        _asm.Emit(Asm.Mov64Imm(R9, 0));
        // R9 = position of R1's bit 0 in the summary word: shift past empty bytes, then bit by bit, so a
        // candidate costs a test and a shift instead of isolating and counting its bit (R9 is a constant
        // on every path: the verifier walks at most 64 positions per summary word)
        var bit = _asm.NewLabel("clsbit");
        var check = _asm.NewLabel("clscheck");
        _asm.Label(loop);
        _asm.Emit(Asm.JgeImm(R9, 64, outerNext), Asm.JeqImm(R1, 0, outerNext), Asm.JsetImm(R1, 0xff, bit),
            Asm.Rsh64Imm(R1, 8), Asm.Add64Imm(R9, 8), Asm.Ja(loop));
        _asm.Label(bit);
        _asm.Emit(Asm.JsetImm(R1, 1, check), Asm.Rsh64Imm(R1, 1), Asm.Add64Imm(R9, 1), Asm.Ja(loop));
        _asm.Label(check);
        _asm.Emit(Asm.LdxDW(R4, R10, ClassifierWord), Asm.Lsh64Imm(R4, 6), Asm.Add64Reg(R4, R9));
        _asm.Emit(Asm.JgeImm(R4, layout.Words, tail)); // never set; bounds the access for the verifier
        _asm.Emit(Asm.Mov64Reg(R5, R4), Asm.Lsh64Imm(R5, 3));
        const short first = 8 * ClassifierLayout.SummaryWords;
        // the most selective fields first (fewest rules without a matcher): a word most candidates lack ends early; by
        // eighths of the rules, so that one rule more or less seldom reorders the code (issue 12: edits are map updates)
        var order = layout.Dimensions.OrderBy(d => 8 * c.Rules.Count(r => r.Admits[d.Index] is null) / c.Rules.Count).Select(d => d.Index).ToList();
        // a folded word (every class's vector holds the rules without a matcher there) is ANDed without the match-anything
        // vectors: only the last granule, the one appended rules take, pays their loads (R4 is a constant to the verifier,
        // so it follows one of the two)
        var folded = _asm.NewLabel("clsfolded");
        if (layout.FoldedWords > 0) _asm.Emit(Asm.JltImm(R4, layout.FoldedWords, folded));
        EmitCandidateWord(order, R5, first, withAny: true, tail);
        _asm.Emit(Asm.JneImm(R0, 0, found), Asm.Ja(tail));
        _asm.Label(folded);
        EmitCandidateWord(order, R5, first, withAny: false, tail);
        _asm.Emit(Asm.JneImm(R0, 0, found));
        _asm.Label(tail);
        _asm.Emit(Asm.Rsh64Imm(R1, 1), Asm.Add64Imm(R9, 1), Asm.Ja(loop));
        _asm.Label(outerNext);
        _asm.Emit(Asm.LdxDW(R3, R10, ClassifierWord), Asm.Add64Imm(R3, 1), Asm.StxDW(R10, ClassifierWord, R3),
            Asm.JltImm(R3, summaries, outer), Asm.Ja(next));

        // rule = 64 * w + lowest bit of the word
        _asm.Label(found);
        _asm.Emit(Asm.Mov64Imm(R5, 0), Asm.Sub64Reg(R5, R0), Asm.And64Reg(R5, R0), Asm.Add64Imm(R5, -1));
        EmitPopcount(R5, R2, R3);
        _asm.Emit(Asm.And64Imm(R5, 63), Asm.Lsh64Imm(R4, 6), Asm.Add64Reg(R4, R5), Asm.Add64Imm(R4, at.RuleBase), Asm.StxW(R10, ClassifierKey, R4));
        EmitClassifierLookup(ClassifierTables.RuleMap, ClassifierKey);
        _asm.Emit(Asm.JeqImm(R0, 0, next), Asm.LdxW(R9, R0, 0));
        var nocount = _asm.NewLabel("nocount");
        _asm.Emit(Asm.LdxW(R1, R0, 4), Asm.JeqImm(R1, 0, nocount), Asm.Add64Imm(R1, -1), Asm.StxW(R10, CounterKey, R1));
        EmitCountAtKey(nocount);
        _asm.Label(nocount);
        EmitVerdictDispatch(layout.VerdictCodes, ctx, next, where);
    }

    /// <summary>R0 = the AND of the fields' words at byte <paramref name="first"/> + <paramref name="at"/>, in <paramref name="order"/>, to <paramref name="zero"/> as soon as it is 0.</summary>
    private void EmitCandidateWord(List<int> order, Register at, short first, bool withAny, string zero)
    {
        void Word(int d, Register dst)
        {
            if (withAny) EmitFieldWord(d, dst, at, first);
            else _asm.Emit(Asm.LdxDW(R2, R10, ClassifierVectors[d]), Asm.Add64Reg(R2, at), Asm.LdxDW(dst, R2, first));
        }
        Word(order[0], R0);
        foreach (var d in order.Skip(1))
        {
            _asm.Emit(Asm.JeqImm(R0, 0, zero));
            Word(d, R3);
            _asm.Emit(Asm.And64Reg(R0, R3));
        }
    }

    /// <summary>
    /// <paramref name="dst"/> = field <paramref name="d"/>'s word at byte <paramref name="offset"/> + <paramref name="at"/>
    /// (a register) of its class's vector ORed with the same word of its match-anything vector; clobbers R2.
    /// </summary>
    private void EmitFieldWord(int d, Register dst, Register at, short offset) =>
        _asm.Emit(Asm.LdxDW(R2, R10, ClassifierVectors[d]), Asm.Add64Reg(R2, at), Asm.LdxDW(dst, R2, offset),
            Asm.LdxDW(R2, R10, ClassifierAnyVectors[d]), Asm.Add64Reg(R2, at), Asm.LdxDW(R2, R2, offset), Asm.Or64Reg(dst, R2));

    /// <summary>Looks the packet's class of one field up, then its vector, whose pointer goes to the field's stack slot.</summary>
    private void EmitClassVector(ClassifierLayout.Dimension d, (int Map, int Slot, int Absent) at, string next)
    {
        var absent = _asm.NewLabel("clsabsent");
        var have = _asm.NewLabel("clshave");
        var deps = Dependencies.Of([new MatchKey(d.Field)])!;
        EmitDependencies(deps, absent);
        if (d.IsArray)
        {
            LoadField(d.Field, new Part(0, d.Field.Bytes), R0, absent);
            if (at.Slot > 0) _asm.Emit(Asm.Add64Imm(R0, at.Slot << d.Field.Bits));
            _asm.Emit(Asm.StxW(R10, ClassifierKey, R0));
        }
        else
        {
            // LPM key {prefix length, slot, value}: all of it
            for (var i = 0; i < 8 + d.Field.Bytes; i += 8) _asm.Emit(Asm.StDW(R10, (short)(Key + i), 0));
            _asm.Emit(Asm.StW(R10, Key, 32 + d.Field.Bits), Asm.StW(R10, (short)(Key + 4), BigEndianSlot(at.Slot)));
            StoreField(d.Field, (short)(Key + 8), absent);
        }
        // every value has a class (the array covers the field's range, the trie holds /0): a miss cannot happen
        EmitClassifierLookup(ClassifierTables.ClassMap(at.Map), d.IsArray ? ClassifierKey : Key);
        _asm.Emit(Asm.JeqImm(R0, 0, absent), Asm.LdxW(R0, R0, 0));
        if (at.Slot > 0) _asm.Emit(Asm.Alu64Imm(AluOp.Xor, R0, at.Slot)); // stored XOR the slot (ClassifierTables)
        _asm.Emit(Asm.Ja(have));
        _asm.Label(absent);
        _asm.Emit(Asm.Mov64Imm(R0, at.Absent));
        _asm.Label(have);
        _asm.Emit(Asm.StxW(R10, ClassifierKey, R0));
        EmitClassifierLookup(ClassifierTables.VectorMap(at.Map), ClassifierKey);
        _asm.Emit(Asm.JeqImm(R0, 0, next), Asm.StxDW(R10, ClassifierVectors[d.Index], R0));
    }

    /// <summary>
    /// R0 = the value of the key at <paramref name="key"/> on the stack in the copy of a classifier map this run's
    /// generation names, or 0. Through the outer map (inlined by the verifier): naming both copies in the code would
    /// give the verifier a state per copy at every lookup, and their product through the scan.
    /// </summary>
    private void EmitClassifierLookup(string map, short key)
    {
        var done = _asm.NewLabel("clslooked");
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, Generation), Asm.LoadMapFd(R1, map), Asm.Call(HelperFunc.MapLookupElem),
            Asm.JeqImm(R0, 0, done), Asm.Mov64Reg(R1, R0), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, key), Asm.Call(HelperFunc.MapLookupElem));
        _asm.Label(done);
    }

    /// <summary>The slot as the big-endian u32 the key holds, read back as a little-endian immediate for a stack store.</summary>
    private static int BigEndianSlot(int slot) => System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(slot);

    /// <summary>x = number of set bits of x (SWAR), clobbering t and u.</summary>
    private void EmitPopcount(Register x, Register t, Register u)
    {
        _asm.Emit(Asm.Mov64Reg(t, x), Asm.Rsh64Imm(t, 1), Asm.LoadImm64(u, 0x5555555555555555), Asm.And64Reg(t, u), Asm.Sub64Reg(x, t),
            Asm.Mov64Reg(t, x), Asm.Rsh64Imm(t, 2), Asm.LoadImm64(u, 0x3333333333333333), Asm.And64Reg(t, u), Asm.And64Reg(x, u), Asm.Add64Reg(x, t),
            Asm.Mov64Reg(t, x), Asm.Rsh64Imm(t, 4), Asm.Add64Reg(x, t), Asm.LoadImm64(u, 0x0f0f0f0f0f0f0f0f), Asm.And64Reg(x, u),
            Asm.LoadImm64(u, 0x0101010101010101), Asm.Alu64Reg(AluOp.Mul, x, u), Asm.Rsh64Imm(x, 56));
    }
}
