using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Chains taken back from the kernel's nf_tables at a new attach point: every such attach point runs its program
/// before the kernel commit deletes the kernel's copy, so no packet passes where neither filters (a new XDP/tcx link
/// would otherwise run its accept-everything program, a netfilter link moved next to its priority its empty dispatcher,
/// from the kernel commit until <see cref="Commit"/>). Both copies hold the same rules: a packet either drops ends.
/// A chain joining an attach point BPF already runs (another chain of the device at its XDP/tcx link) has the link run
/// the new program early too; what the replaced program wrote to packet-written sets is carried around that early swap
/// as the commit's swap carries it (<see cref="PacketPathCarry"/>), and the elements the kernel's packet path added
/// while the programs were installed are merged in before the kernel commit (<see cref="CatchUpEarly"/>).
/// A kernel commit failing after it closes the new links and puts the replaced programs back (the kernel's copy never
/// left), with what the early programs wrote to the sets the replaced ones write carried back to them.
/// </summary>
public sealed partial class Enforcer
{
    /// <summary>Attach points that take chains back from the kernel (<see cref="Prepare"/>'s takenBack).</summary>
    IReadOnlySet<string> _takenBack = new HashSet<string>();

    /// <summary>The steps <see cref="InstallEarly"/> installed for the staged or last commit.</summary>
    readonly List<Step> _early = [];

    /// <summary>
    /// The programs early installs replaced at attach points BPF already ran (a chain joining a device's XDP/tcx link):
    /// kept until the commit folds what they counted into the ledger, or the abort puts them back.
    /// </summary>
    readonly Dictionary<Step, LoadedProgram> _replacedEarly = [];

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
        _earlyFirst.Clear();
        _carriedEarly.Clear();
        if (_staged is not { } staged) return [];
        var steps = EarlySteps(staged);
        if (steps.Count > 0) before?.Invoke();
        var changes = staged.PacketPath ?? new Dictionary<string, SetChange>();
        var carried = new HashSet<(SetCopies, SetCopies)>();
        // as SwapIn: every program seeded and carried into before any is installed, what the old ones wrote since after
        foreach (var s in steps)
        {
            Seed(s.Loaded!, staged.Seeds, staged.Seeded, errors);
            if (s.Existing?.Program is { } old && PacketPathCarry.Before(old, s.Loaded!, changes, staged.Recreated, carried) is { } carry)
                _carriedEarly[s] = carry;
        }
        foreach (var s in steps)
        {
            if (s.Existing?.Install(s.Loaded!) is { } replaced) _replacedEarly[s] = replaced;
            else s.Created?.Install(s.Loaded!);
            _early.Add(s);
            // known while the link is open (a withdrawn one's priority can no longer be read)
            if (RunsFirst(s)) _earlyFirst.Add(s);
        }
        foreach (var (s, carry) in _carriedEarly)
            try
            {
                carry.After();
            }
            catch (Exception e)
            {
                errors.Add($"carrying the packet path's elements at {s.Unit.Key} failed, the new program runs without what the old one wrote last: {e.Message}");
            }
        return steps.Select(s => s.Loaded!).ToList();
    }

    /// <summary>The early carries of joined links (<see cref="PacketPathCarry"/>), swept once the replaced programs are gone.</summary>
    readonly Dictionary<Step, PacketPathCarry> _carriedEarly = [];

    /// <summary>The commit keeps the early installs: what the programs they replaced counted goes to the ledger, and they go.</summary>
    void SettleEarly()
    {
        foreach (var old in _replacedEarly.Values)
        {
            _ledger.Fold(old);
            old.Dispose();
        }
        _replacedEarly.Clear();
        foreach (var carry in _carriedEarly.Values) carry.Sweep();
        _carriedEarly.Clear();
    }

    /// <summary>
    /// The kernel commit failed: the early programs' links close (the kernel's copies filter alone again), and what the
    /// programs counted stays readable (<see cref="EarlyCounter"/>) until the abort frees them. Once per transaction.
    /// </summary>
    public void WithdrawEarly()
    {
        foreach (var s in _early)
        {
            if (s.Existing == null)
            {
                s.Created!.Withdraw();
                continue;
            }
            if (!_replacedEarly.Remove(s, out var old)) continue;
            // the program that ran before runs again, with what the early one wrote to the sets it writes; what the early
            // one counted for the chains BPF ran stays theirs
            var back = _carriedEarly.ContainsKey(s) ? CarryBack(s.Loaded!, old) : null;
            s.Existing.Install(old);
            try
            {
                back?.After();
            }
            catch (Exception e) when (e is Libbpf.BpfException or CodegenException)
            {
                // the replaced program runs again without what the early one wrote last (a withdraw cannot fail)
            }
            _ledger.Fold(s.Loaded!);
        }
        _carriedEarly.Clear();
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
        return holding.Count > 0 && holding.All(_earlyFirst.Contains);
    }

    /// <summary>The early steps whose programs run before the kernel's copies of their chains (<see cref="EarlyRunsFirst"/>).</summary>
    readonly HashSet<Step> _earlyFirst = [];

    static bool RunsFirst(Step s) => s.Unit.Hook switch
    {
        XdpIngress or TcIngress => true,
        NetfilterHook n => (s.Existing ?? s.Created)!.LinkPriority is { } p && p < n.Priority,
        _ => false,
    };

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

    /// <summary>
    /// Adds to a quota slot <see cref="SeedQuotaEarly"/> seeded the <paramref name="bytes"/> the kernel's copy consumed
    /// after that read, atomically against the early programs spending it.
    /// </summary>
    public void AddQuotaEarly(ulong slot, ulong bytes)
    {
        if (_staged?.QuotaBase is not { } bases || _quotas == null || !bases.ContainsKey(slot) || !QuotaMap.Holds(slot)) return;
        _quotas.Add(slot, bytes);
    }
}
