namespace Bpfilter.Soak;

/// <summary>Totals of a soak run; <see cref="Failure"/> is the first check that failed (the run stops there), or null.</summary>
/// <param name="RefusedByNft">failing batches the model expected to pass (nft refused them; both sides alike)</param>
public sealed record SoakResult(int Transactions, int FailingBatches, int RefusedByNft, int Restarts, long Packets, long Flooded, long Checks, string? Failure)
{
    public string SummaryLine =>
        $"soak: {Transactions} transactions ({FailingBatches} failing batches, {RefusedByNft} of them unforeseen), {Restarts} restarts, {Packets} packets measured, " +
        $"{Flooded} flooded, {Checks} checks, failures: {(Failure == null ? 0 : 1)}";
}
