namespace Bpfilter.Fuzz;

/// <summary>
/// One thing the fuzzer drives. <see cref="Run"/> returns normally for every input the code under test
/// handles as it must, and throws (a <see cref="FuzzFinding"/>, or whatever escaped) for a crash.
/// </summary>
public interface IFuzzTarget
{
    string Name { get; }
    void Run(ReadOnlySpan<byte> input);
}

public static class FuzzTargets
{
    public static readonly IReadOnlyList<IFuzzTarget> All = [new DecoderTarget(), new EngineTarget()];

    public static IFuzzTarget Named(string name) =>
        All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"no fuzz target '{name}' (known: {string.Join(", ", All.Select(t => t.Name))})");
}
