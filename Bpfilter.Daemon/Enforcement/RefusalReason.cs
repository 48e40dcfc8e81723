namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Why the enforcing backend refused a batch (<see cref="Nft.Engine.BackendRefusal.Reason"/>), one word each:
/// the values of the reason label of bpfilterd_refusals_total besides "nf_tables" (an error the kernel's
/// nf_tables gives as well).
/// </summary>
public static class RefusalReason
{
    /// <summary>--placement bpf-only: a base chain BPF cannot run faithfully.</summary>
    public const string BpfOnly = "bpf_only";
    /// <summary>A program BPF could not load, verify or attach, and no fallback to the kernel was left.</summary>
    public const string BpfLoad = "bpf_load";
    /// <summary>The kernel's nf_tables refused or failed the part placed there.</summary>
    public const string KernelPlacement = "kernel_placement";
    /// <summary>The table bpfilterd switches conntrack on with.</summary>
    public const string ReservedTable = "reserved_table";
    /// <summary>A BPF chain reads ct and conntrack could not be switched on.</summary>
    public const string Conntrack = "conntrack";
    /// <summary>Anything else: a bug or a kernel surprise.</summary>
    public const string Internal = "internal";
}
