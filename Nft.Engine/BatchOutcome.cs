namespace Nft.Engine;

/// <summary>How a batch ended.</summary>
public enum BatchResult
{
    /// <summary>Committed and changed the ruleset: a new generation.</summary>
    Committed,
    /// <summary>Committed but changed nothing (the kernel bumps no generation for it either).</summary>
    Unchanged,
    /// <summary>Refused with an error: nothing of it was applied.</summary>
    Refused,
    /// <summary>Not applied and no error: no BATCH_END (nft --check), or too short to be read.</summary>
    Aborted,
}

/// <summary>
/// One batch's outcome for <see cref="NfTablesOptions.BatchFinished"/>: how it ended, how long it took from its
/// arrival until the commit (or refusal) was done, and for a refusal its reason: "nf_tables" for an error
/// the kernel's nf_tables gives as well, else the backend's (<see cref="BackendRefusal.Reason"/>); with the
/// split of that time by phase when the batch got as far as being read.
/// </summary>
public sealed record BatchOutcome(BatchResult Result, TimeSpan Elapsed, string? Reason = null, BatchPhases? Phases = null)
{
    /// <summary>The reason of a refusal the emulation itself made, as the kernel would.</summary>
    public const string NfTablesReason = "nf_tables";
}
