using System.Collections.Immutable;

namespace Bpfilter.Backend.Bpf;

/// <summary>
/// Collects instructions and labels. Labels attach to the next emitted instruction; forward jumps
/// can be scoped: <c>using (asm.SkipIf(l =&gt; Asm.JneImm(R1, 6, l))) { ... }</c> jumps past the block.
/// </summary>
public sealed class Assembler
{
    private readonly ImmutableArray<Instruction>.Builder _insns = ImmutableArray.CreateBuilder<Instruction>();
    private readonly List<string> _pendingLabels = new();
    private string? _pendingComment;
    private int _nextLabel;

    public int Count => _insns.Count;

    public Assembler Emit(Instruction insn)
    {
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
        if (_pendingLabels.Count > 0)
            throw new BpfAssemblyException(_insns.Count, $"label '{_pendingLabels[0]}' has no instruction after it");
        return _insns.ToImmutable();
    }

    /// <summary>A forward jump target that is placed at the next instruction when disposed.</summary>
    public readonly struct JumpScope(Assembler asm, string label) : IDisposable
    {
        public string Target => label;
        public void Dispose() => asm.Label(label);
    }
}
