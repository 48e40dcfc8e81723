namespace Bpfilter.Soak;

/// <param name="Duration">how long transactions are applied</param>
/// <param name="Seed">the random generator's seed (the same seed gives the same transactions)</param>
/// <param name="Restarts">kill -9 (one in four: SIGTERM) and restart bpfilterd at random points</param>
/// <param name="KernelPlacedRules">also generate rules BPF does not run (ct helper), whose chains go to the kernel's nf_tables</param>
public sealed record SoakOptions(TimeSpan Duration, int Seed, bool Restarts = true, bool KernelPlacedRules = false);
