using System.Collections.Immutable;

namespace Bpfilter.Backend.Bpf;

/// <summary>
/// Collects instructions and labels. Labels attach to the next emitted instruction; forward jumps
/// can be scoped: <c>using (asm.SkipIf(l =&gt; Asm.JneImm(R1, 6, l))) { ... }</c> jumps past the block.
/// With <c>dropUnreachable</c>, instructions that no path reaches are not emitted (the verifier rejects
/// unreachable code); this relies on jumps going forward only, which the code generator guarantees.
/// </summary>
/// <param name="firstLabel">Number of the first <see cref="NewLabel"/>: a program split into segments (one
/// assembler each) keeps label names unique across them, since labels may be carried from one to the next.</param>
public sealed class Assembler(bool dropUnreachable = false, int firstLabel = 0)
{
    private readonly HashSet<string> _referenced = new(StringComparer.Ordinal);
    private readonly ImmutableArray<Instruction>.Builder _insns = ImmutableArray.CreateBuilder<Instruction>();
    private readonly List<string> _pendingLabels = new();
    private string? _pendingComment;
    private int _nextLabel = firstLabel;

    public int Count => _insns.Count;

    /// <summary>False after an unconditional jump or exit until a label that some jump targets.</summary>
    public bool Reachable { get; private set; } = true;

    public bool IsReferenced(string label) => _referenced.Contains(label);

    /// <summary>
    /// Conditional jumps emitted: the verifier keeps one pending state per branch it has not explored yet, at
    /// most 8192 (BPF_COMPLEXITY_LIMIT_JMP_SEQ), and a chain of rules leaves most of its branches pending.
    /// </summary>
    public int Branches { get; private set; }

    /// <summary>Number the next <see cref="NewLabel"/> gets.</summary>
    public int NextLabel => _nextLabel;

    public Assembler Emit(Instruction insn)
    {
        if (dropUnreachable && !Reachable)
        {
            _pendingComment = null;
            return this;
        }
        if (insn.Reference is { } target) _referenced.Add(target);
        if (insn.IsJump && (JumpOp)OpCode.Code(insn.OpCode) != JumpOp.Ja) Branches++;
        var op = insn.OpCode;
        if (op == (OpCode.Jmp | (byte)JumpOp.Exit) || op == (OpCode.Jmp | (byte)JumpOp.Ja)) Reachable = false;
        if (_pendingLabels.Count > 0)
        {
            insn = insn with { Labels = insn.Labels.AddRange(_pendingLabels) };
            _pendingLabels.Clear();
        }
        if (_pendingComment is not null && insn.Comment is null)
        {
            insn = insn with { Comment = _pendingComment };
        }
        _pendingComment = null;
        _insns.Add(insn);
        return this;
    }

    public Assembler Emit(params Instruction[] insns)
    {
        foreach (var i in insns) Emit(i);
        return this;
    }

    /// <summary>Defines <paramref name="name"/> at the next emitted instruction.</summary>
    public Assembler Label(string name)
    {
        // "goto L; L:" is a no-op: drop the jump (its own labels move to the next instruction).
        if (dropUnreachable && _insns.Count > 0 && _insns[^1] is { Reference: var r } last && r == name
            && last.OpCode == (OpCode.Jmp | (byte)JumpOp.Ja))
        {
            _insns.RemoveAt(_insns.Count - 1);
            _pendingLabels.AddRange(last.Labels);
            _pendingComment ??= last.Comment;
            Reachable = true;
        }
        if (_referenced.Contains(name)) Reachable = true;
        _pendingLabels.Add(name);
        return this;
    }

    /// <summary>Attaches a comment to the next emitted instruction (shown by the disassembler).</summary>
    public Assembler Comment(string text)
    {
        _pendingComment = text;
        return this;
    }

    /// <summary>A label name not used before in this assembler.</summary>
    public string NewLabel(string hint) => $".{hint}{_nextLabel++}";

    /// <summary>Emits the jump built by <paramref name="jump"/> to a fresh label placed when the scope is disposed.</summary>
    public JumpScope SkipIf(Func<string, Instruction> jump)
    {
        var label = NewLabel("skip");
        Emit(jump(label));
        return new JumpScope(this, label);
    }

    public ImmutableArray<Instruction> Build()
    {
        var dangling = _pendingLabels.FirstOrDefault(l => _referenced.Contains(l));
        if (dangling is not null)
            throw new BpfAssemblyException(_insns.Count, $"label '{dangling}' has no instruction after it");
        _pendingLabels.Clear();
        return _insns.ToImmutable();
    }

    /// <summary>A forward jump target that is placed at the next instruction when disposed.</summary>
    public readonly struct JumpScope(Assembler asm, string label) : IDisposable
    {
        public string Target => label;
        public void Dispose() => asm.Label(label);
    }
}
