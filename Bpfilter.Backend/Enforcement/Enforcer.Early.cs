using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Chains taken back from the kernel's nf_tables at a new attach point: every such attach point runs its program
/// before the kernel commit deletes the kernel's copy, so no packet passes where neither filters (a new XDP/tcx link
/// would otherwise run its accept-everything program, a netfilter link moved next to its priority its empty dispatcher,
/// from the kernel commit until <see cref="Commit"/>). Both copies hold the same rules: a packet either drops ends.
/// A kernel commit failing after it aborts the transaction, which closes those links (the kernel's copy never left).
/// </summary>
public sealed partial class Enforcer
{
    /// <summary>Attach points that take chains back from the kernel (<see cref="Prepare"/>'s takenBack).</summary>
    IReadOnlySet<string> _takenBack = new HashSet<string>();

    /// <summary>The steps <see cref="InstallEarly"/> installed for the staged or last commit.</summary>
    readonly List<Step> _early = [];

    /// <summary>
    /// Installs the programs of the staged new attach points that take chains back from the kernel, calling
    /// <paramref name="before"/> once before the first (nothing runs them yet: what they start from is set there). They
    /// filter beside the kernel's copies until the kernel commit removes those, and the commit keeps them as installed.
    /// Returns the programs, which count from now on. A packet-path element that cannot be seeded is reported in
    /// <paramref name="errors"/>, as the commit reports it.
    /// </summary>
    public IReadOnlyList<LoadedProgram> InstallEarly(List<string> errors, Action? before = null)
    {
        _early.Clear();
        if (_staged is not { } staged) return [];
        var steps = staged.Steps.Where(s => s is { Existing: null, Created: not null, Loaded: not null } && _takenBack.Contains(s.Unit.Key)).ToList();
        if (steps.Count > 0) before?.Invoke();
        foreach (var s in steps)
        {
            Seed(s.Loaded!, staged.Seeds, staged.Seeded, errors);
            s.Created!.Install(s.Loaded!);
            _early.Add(s);
        }
        return steps.Select(s => s.Loaded!).ToList();
    }

    /// <summary>
    /// The kernel commit failed: the early programs' links close (the kernel's copies filter alone again), and what the
    /// programs counted stays readable (<see cref="EarlyCounter"/>) until the abort frees them. Once per transaction.
    /// </summary>
    public void WithdrawEarly()
    {
        foreach (var s in _early) s.Created!.Withdraw();
    }

    /// <summary>What the programs <see cref="InstallEarly"/> installed counted for counter <paramref name="id"/> themselves.</summary>
    public (ulong Packets, ulong Bytes) EarlyCounter(ulong id)
    {
        ulong p = 0, b = 0;
        foreach (var s in _early)
        {
            var (pp, bb) = s.Loaded!.Counter(id);
            p += pp;
            b += bb;
        }
        return (p, b);
    }

    /// <summary>
    /// Whether every early program counting <paramref name="id"/> runs before the kernel's copy of its chain on each
    /// packet: XDP and tc ingress run before nf_tables' netdev ingress, a netfilter link below the chain's priority before
    /// it; tc egress runs after netdev egress, a link above the priority after it. False when none counts it.
    /// </summary>
    public bool EarlyRunsFirst(ulong id)
    {
        var holding = _early.Where(s => s.Loaded!.Compiled.CounterSlots.ContainsKey(id)).ToList();
        return holding.Count > 0 && holding.All(s => s.Unit.Hook switch
        {
            XdpIngress or TcIngress => true,
            NetfilterHook n => s.Created!.LinkPriority is { } p && p < n.Priority,
            _ => false,
        });
    }

    /// <summary>
    /// Gives a quota slot the staged programs take over from the kernel what the kernel consumed (<paramref name="used"/>
    /// beyond <paramref name="start"/>, the slot's staged start point when null), before they are installed early: they
    /// spend it from there, and the commit keeps what they spent.
    /// </summary>
    public void SeedQuotaEarly(ulong slot, ulong used, ulong? start)
    {
        if (_staged?.QuotaBase is not { } bases || _quotas == null || !bases.ContainsKey(slot) || !QuotaMap.Holds(slot)) return;
        if (start is { } s) bases[slot] = s;
        _quotas.Set(slot, bases[slot] + used);
    }
}
