using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Daemon.Placement;
using Nft.Kernel;
using Nft.Lifter;
using Nft.Netlink;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Chains held in the kernel's nf_tables for the limits they reach (<see cref="KernelLimitIdle"/>): a chain that would
/// run in BPF stays in the kernel while the kernel copy's bucket of a limit it reaches is not known full. Re-checked at
/// every commit, and without one when the held limits could be known full (<see cref="KernelLimitIdle.FullAt"/>): a
/// timer reads the hidden `last`s then and, when a held chain's limits are all known full, has the committed ruleset
/// committed again (<see cref="HoldRecommit"/>, the same Prepare and Commit a netlink commit runs, serialised with them);
/// when one was reached again meanwhile it waits on. nft sees nothing of it: the ruleset and its generation stay.
/// </summary>
public sealed partial class EnforcingBackend
{
    /// <summary>The committed placement's chains held for limits, with the limits each waits for.</summary>
    IReadOnlyDictionary<ChainId, IReadOnlyList<StatefulKey>> _heldForLimits = new Dictionary<ChainId, IReadOnlyList<StatefulKey>>();
    /// <summary>Commits the committed ruleset again, outside any request; gives why it failed, or null.</summary>
    Func<string?>? _recommit;
    Timer? _holdTimer;
    /// <summary>When the timer fires next (<see cref="Environment.TickCount64"/> ms), or null: it is not armed.</summary>
    long? _holdCheckAt;
    /// <summary>Re-placements in a row that failed: each waits twice as long as the one before, up to <see cref="MaxHoldRetry"/>.</summary>
    int _holdFailures;
    static readonly TimeSpan MaxHoldRetry = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Has held chains re-checked without waiting for a commit: <paramref name="recommit"/> commits the committed ruleset
    /// again as a commit does (the engine's <c>NfTablesEndpoint.Recommit</c>), giving why it failed or null.
    /// </summary>
    public void HoldRecommit(Func<string?> recommit)
    {
        lock (_gate)
        {
            _recommit = recommit;
            _holdTimer ??= new Timer(_ => RecheckHeld());
            ArmHold(HeldFullAt());
        }
    }

    /// <summary>When the timer re-checks the held chains next, in ms from now (`bpfilterd explain`); null: none is held, or no time would tell.</summary>
    public long? HoldRecheckInMs()
    {
        lock (_gate) return _holdCheckAt is { } at ? Math.Max(0, at - Environment.TickCount64) : null;
    }

    /// <summary>A commit placed <paramref name="held"/> in the kernel for their limits: the timer waits for them.</summary>
    void HoldCommitted(IReadOnlyDictionary<ChainId, IReadOnlyList<StatefulKey>>? held)
    {
        _heldForLimits = held ?? new Dictionary<ChainId, IReadOnlyList<StatefulKey>>();
        _holdFailures = 0;
        ArmHold(HeldFullAt());
    }

    /// <summary>
    /// The earliest moment a held chain's limits could all be known full, from what was observed of them so far;
    /// null when none is held or no time would tell (see <see cref="KernelLimitIdle.FullAt"/>).
    /// </summary>
    long? HeldFullAt()
    {
        if (_kernel == null || _heldForLimits.Count == 0) return null;
        var placed = _kernel.Placed;
        var tick = Bpfilter.Backend.Libbpf.KernelClock.TickMs ?? 10;
        long? earliest = null;
        foreach (var limits in _heldForLimits.Values)
        {
            long? chain = long.MinValue;
            foreach (var key in limits)
                chain = _limitIdle.FullAt(placed, key, tick) is { } at && chain is { } c ? Math.Max(c, at) : null;
            if (chain is { } ready && (earliest == null || ready < earliest)) earliest = ready;
        }
        return earliest;
    }

    void ArmHold(long? at)
    {
        _holdCheckAt = _recommit == null ? null : at;
        if (_holdTimer == null) return;
        var now = Environment.TickCount64;
        // a far moment is re-checked hourly (a Timer waits 49 days at most), which finds it not come and waits on
        var due = at is not { } t ? Timeout.Infinite : t <= now ? 0 : Math.Min(t - now, (long)TimeSpan.FromHours(1).TotalMilliseconds);
        try
        {
            _holdTimer.Change(due, Timeout.Infinite);
        }
        catch (ObjectDisposedException)
        {
            // the backend is being disposed: nothing is re-checked any more
        }
    }

    /// <summary>
    /// The timer: reads when the held limits were last reached; when a held chain's are all known full, commits the
    /// committed ruleset again, which moves it (the commit arms the timer anew); else waits until they could be.
    /// </summary>
    void RecheckHeld()
    {
        // a timer callback that throws ends the process: whatever goes wrong here is a failed re-placement
        string? failure;
        try
        {
            failure = TryReplaceHeld();
        }
        catch (Exception e)
        {
            failure = $"{e.GetType().Name}: {e.Message}";
        }
        if (failure == null) return;
        lock (_gate)
        {
            var wait = Math.Min(1000L << Math.Min(_holdFailures++, 20), (long)MaxHoldRetry.TotalMilliseconds);
            _log($"re-placing the committed ruleset for the chains held for their limits failed, everything stays as it was; retried in {wait} ms: {failure}");
            ArmHold(Environment.TickCount64 + wait);
        }
    }

    /// <summary>The timer's work; why the re-placement failed, or null (done, or nothing to do yet).</summary>
    string? TryReplaceHeld()
    {
        Func<string?> recommit;
        lock (_gate)
        {
            if (_recommit == null || _heldForLimits.Count == 0) return null;
            var now = ObserveKernelLimits();
            var at = HeldFullAt();
            if (at == null || at > now)
            {
                // reached again meanwhile (or unreadable: the next commit re-checks)
                ArmHold(at);
                return null;
            }
            recommit = _recommit;
            _log($"re-placing the committed ruleset (no new generation): the limits holding {string.Join(", ", _heldForLimits.Keys)} in the kernel's nf_tables are known full");
        }
        // outside the gate: the engine takes its own lock first, as a request does
        return recommit();
    }

    /// <summary>
    /// Reads when the kernel copy's limits were last reached (<see cref="KernelLimitIdle"/>), once per commit while the
    /// kernel holds any, before the commit replaces rules and their hidden `last` with them; when it read them.
    /// </summary>
    long ObserveKernelLimits()
    {
        var now = Environment.TickCount64;
        if (_kernel == null || !KernelLimitIdle.Any(_kernel.Placed)) return now;
        try
        {
            _limitIdle.Observe(_kernel.Placed, _kernel.ReadLasts(), now);
        }
        catch (Exception e) when (e is KernelNfTablesException or NetlinkException or IOException)
        {
            _log($"reading the kernel's rules for when their limits were last reached failed: chains reaching one stay in the kernel: {e.Message}");
            _limitIdle.Unread($"when the kernel's rules were last reached could not be read: {e.Message}");
        }
        return now;
    }

    /// <summary>
    /// Adds to <paramref name="kept"/> each chain <paramref name="plan"/> would run in BPF that reaches a limit the kernel
    /// copy holds and gives up (not renewed: that one starts full on both sides) whose bucket there is not known full at
    /// <paramref name="now"/>: BPF's would start full, letting through packets the kernel's would not; <paramref name="heldFor"/>
    /// gets those limits. Whether it added one.
    /// </summary>
    bool KeptForLimits(IReadOnlyList<SourceTable> sources, PlacementPlan plan, LiftResult lift, RenewedSlots renewed,
        Dictionary<ChainId, string> kept, Dictionary<ChainId, IReadOnlyList<StatefulKey>> heldFor, long now)
    {
        if (_kernel == null || _plan == null || lift.Limits.Count == 0) return false;
        var placed = _kernel.Placed;
        var leaving = lift.Limits.Where(l => !renewed.Limits.Contains(l.Value) && !LimitMoves.Placed(plan.KernelTables, l.Key) && LimitMoves.Placed(placed, l.Key))
            .Select(l => l.Key).ToList();
        if (leaving.Count == 0) return false;
        var notFull = _limitIdle.NotFull(placed, leaving, now, Bpfilter.Backend.Libbpf.KernelClock.TickMs ?? 10);
        bool added = false;
        foreach (var c in plan.Chains.Where(c => c.Side == PlacementSide.Bpf && !kept.ContainsKey(c.Chain)))
        {
            if (notFull.Count == 0 || sources.FirstOrDefault(t => t.Family == c.Chain.Family && t.Name == c.Chain.Table) is not { } table) continue;
            var reach = Nft.Kernel.KernelSubset.For(table, [c.Chain.Chain]);
            var reached = notFull.Where(n => LimitMoves.Placed([reach], n.Key)).ToList();
            if (reached.Count == 0) continue;
            var why = reached.Select(n => n.Value).Order(StringComparer.Ordinal);
            heldFor[c.Chain] = reached.Select(n => n.Key).ToList();
            kept[c.Chain] = $"it reaches limits whose bucket in the kernel's copy is not known full, and BPF's would start full: {string.Join("; ", why)}";
            _log($"{c.Chain} stays in the kernel's nf_tables: {kept[c.Chain]}");
            added = true;
        }
        return added;
    }
}
