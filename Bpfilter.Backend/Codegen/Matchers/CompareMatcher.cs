using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Matchers by operator: ==, !=, ordered comparisons, ranges and masks on one field, in 64-bit parts
/// for wide fields; concatenations field by field. Sets are in SetMatcher.
/// </summary>
public sealed partial class ProgramCompiler
{
    private void EmitMatcher(Matcher m, string fail)
    {
        if (m.Operator is InSet s)
        {
            EmitSetMatcher(m.Key, s, fail);
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
        // != : fails only if every field is equal (and, as nf_tables breaks the rule, if the packet lacks a ct key).
        foreach (var ct in m.Key.Fields.OfType<CtField>().Where(f => f.Key is not CtReadKey.State)) EmitCtPresenceCheck(ct, fail);
        var differs = _asm.NewLabel("differs");
        foreach (var x in matchers) EmitMatcher(x, differs);
        _asm.Emit(Asm.Ja(fail));
        _asm.Label(differs);
    }
}
