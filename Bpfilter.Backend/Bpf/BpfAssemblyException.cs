namespace Bpfilter.Backend.Bpf;

/// <summary>An instruction list that cannot be marshalled; Index is the offending instruction.</summary>
public sealed class BpfAssemblyException(int index, string message)
    : Exception($"instruction {index}: {message}")
{
    public int Index { get; } = index;
}
