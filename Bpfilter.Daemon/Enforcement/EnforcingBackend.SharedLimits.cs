using Bpfilter.Backend.Ir;
using Bpfilter.Daemon.Placement;
using Nft.Bytecode.Expressions;
using Nft.Kernel;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The kernel copy of a rule runs BPF's bucket for a `limit` whose bucket BPF holds (<see cref="XtBpfMatch"/> on the
/// socket filter <see cref="Bpfilter.Backend.Loader.LimitMatch"/>): the kernel's own limit would start full
/// (nft_limit_init; no attribute sets its tokens), so a chain BPF drained would let a burst through on its move to the
/// kernel. Shared: a rule's anonymous limit in an ip, ip6 or inet table the kernel copy takes over from BPF, or already
/// runs with BPF's bucket (its filter pinned), while a pin directory is set. Its slot and bucket stay BPF's (kept limits),
/// so the move back to BPF goes on from the same bucket too.
/// </summary>
public sealed partial class EnforcingBackend
{
    /// <summary>Per `limit` the next kernel transition sends, the pinned filter it runs instead (read by the kernel placement).</summary>
    Dictionary<LimitAt, string> _limitMatchPaths = [];
    /// <summary>The limits the staged round shares, by key: kept limits besides the lift's.</summary>
    Dictionary<StatefulKey, LimitStatement> _stagedShared = [];

    /// <summary>
    /// The shared limits of <paramref name="plan"/>'s kernel tables (see the class summary), with their filters pinned;
    /// the kernel placement's transitions send them as xt_bpf matches from now on. A table the batch deleted and added
    /// again shares none: its rules are new ones (the same handles again), whose limits start full on both sides.
    /// </summary>
    Dictionary<StatefulKey, LimitStatement> ShareLimits(PlacementPlan plan, IReadOnlyList<(byte Family, string Table)> recreated)
    {
        var shared = new Dictionary<StatefulKey, LimitStatement>();
        var paths = new Dictionary<LimitAt, string>();
        if (_kernel != null)
            foreach (var t in plan.KernelTables)
            {
                if (!XtBpfMatch.Runs(t.Family) || recreated.Contains((t.Family, t.Name))) continue;
                foreach (var c in t.Chains)
                    foreach (var r in c.Rules)
                        for (int i = 0; i < (r.Expressions?.Count ?? 0); i++)
                        {
                            if (r.Expressions![i] is not LimitExpr l || r.Handle is not { } handle) continue;
                            var key = new StatefulKey(t.Family, t.Name, c.Chain.Name!, handle, i, null);
                            if (Shared(key, l) is not { } limit || _enforcer.LimitMatchPath(limit) is not { } path || !XtBpfMatch.Fits(path)) continue;
                            shared[key] = limit;
                            paths[new LimitAt(t.Family, t.Name, c.Chain.Name!, handle, i)] = path;
                        }
            }
        _limitMatchPaths = paths;
        _kernel?.LimitMatchPath ??= at => _limitMatchPaths.TryGetValue(at, out var p) ? p : null;
        return shared;
    }

    /// <summary>
    /// <paramref name="key"/>'s limit as BPF runs it, when its bucket is BPF's to share: BPF ran it at the last commit (the
    /// kernel does not hold it), or the kernel copy already runs BPF's bucket for it (its filter is pinned).
    /// </summary>
    LimitStatement? Shared(StatefulKey key, LimitExpr l)
    {
        if (!_slots.Limits.TryGet(key, out var slot)) return null;
        LimitStatement limit;
        try
        {
            limit = LimitStatements.Lift(l, slot, e => new InvalidOperationException(e));
        }
        catch (InvalidOperationException)
        {
            return null;
        }
        var fromBpf = _current?.Limits.TryGetValue(key, out var ran) == true && ran == slot && !LimitMoves.Placed(_kernel!.Placed, key);
        return fromBpf || _enforcer.HasLimitMatch(limit) ? limit : null;
    }

    /// <summary>The round's shared limits join the kept ones (those of an earlier round of the same Prepare leave).</summary>
    void KeepShared(Dictionary<StatefulKey, LimitStatement> kept, Dictionary<StatefulKey, LimitStatement> shared)
    {
        foreach (var key in _stagedShared.Keys) kept.Remove(key);
        foreach (var (key, limit) in shared) kept[key] = limit;
        _stagedShared = shared;
    }
}
