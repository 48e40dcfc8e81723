namespace Bpfilter.Soak;

/// <summary>A check that did not hold; ends the soak run.</summary>
public sealed class SoakFailure(string message) : Exception(message);
