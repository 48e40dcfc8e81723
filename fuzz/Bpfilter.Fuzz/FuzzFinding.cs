namespace Bpfilter.Fuzz;

/// <summary>An input broke an invariant of a target: a crash for the fuzzer, a failure for the regression tests.</summary>
public sealed class FuzzFinding(string message, Exception? inner = null) : Exception(message, inner);
