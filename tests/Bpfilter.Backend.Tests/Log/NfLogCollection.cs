namespace Bpfilter.Backend.Tests.Log;

/// <summary>Serializes the tests that change nf_log_all_netns or read the kernel log for their own lines.</summary>
[CollectionDefinition("nf_log", DisableParallelization = true)]
public sealed class NfLogCollection;
