namespace Bpfilter.Backend.Codegen;

/// <summary>
/// The IR asks for something the backend cannot enforce faithfully at this hook; the message says
/// what and where (rule origin when known). Nothing is ever silently dropped.
/// </summary>
public sealed class CodegenException(string message) : Exception(message);
