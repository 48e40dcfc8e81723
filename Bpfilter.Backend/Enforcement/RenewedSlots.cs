namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The counter, quota and limit slots of rules, objects and elements a transaction deleted and created anew by the same
/// names (their table, set or themselves deleted and added back): the front-end hands them the slots the old ones held,
/// but the kernel's new objects start from what the transaction gave them. A program counting a renewed counter is
/// loaded anew (its counter maps are its own); a renewed quota or limit slot, in maps all programs share, is set anew at
/// the commit (until then the running programs still spend the old object's).
/// </summary>
public sealed record RenewedSlots(IReadOnlySet<ulong> Counters, IReadOnlySet<ulong> Quotas, IReadOnlySet<ulong> Limits)
{
    public static readonly RenewedSlots None = new(new HashSet<ulong>(), new HashSet<ulong>(), new HashSet<ulong>());
}
