using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// The start of <see cref="LoadedProgram.Digest"/>: the FNV-1a state after a program's name, type and disassembly. Kept per
/// instruction array, as a chain-tail edit or a kept program's recompilation leaves the code as it is: formatting a large
/// program's text on every commit cost about a millisecond and a large-object string that brought full collections on.
/// </summary>
internal static class CodeDigest
{
    sealed record Entry(string Name, BpfProgType Type, object? Segments, IReadOnlyDictionary<int, int> TailCallSlots, ulong State);

    static readonly ConditionalWeakTable<Instruction[], Entry> Known = new();

    public const ulong Offset = 14695981039346656037UL;

    /// <summary>FNV-1a of <paramref name="s"/> onto <paramref name="h"/>, with a separator after it.</summary>
    public static ulong Add(ulong h, string s)
    {
        foreach (char c in s)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        h ^= 0xff;
        return h * 1099511628211UL;
    }

    public static ulong Of(CompiledProgram compiled)
    {
        var code = ImmutableCollectionsMarshal.AsArray(compiled.Instructions);
        var segments = ImmutableCollectionsMarshal.AsArray(compiled.Segments);
        if (code != null && Known.TryGetValue(code, out var e) && e.Name == compiled.Name && e.Type == compiled.ProgramType
            && ReferenceEquals(e.Segments, segments) && ReferenceEquals(e.TailCallSlots, compiled.TailCallSlots))
            return e.State;
        var h = Add(Add(Add(Offset, compiled.Name), compiled.ProgramType.ToString()), compiled.Disassembly);
        if (code != null) Known.AddOrUpdate(code, new Entry(compiled.Name, compiled.ProgramType, segments, compiled.TailCallSlots, h));
        return h;
    }
}
