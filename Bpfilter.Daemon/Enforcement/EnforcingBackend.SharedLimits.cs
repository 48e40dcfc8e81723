using Bpfilter.Backend.Ir;
using Bpfilter.Daemon.Placement;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Kernel;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The kernel copy of a rule runs BPF's bucket for a `limit` whose bucket BPF holds (<see cref="XtBpfMatch"/> on the
/// socket filter <see cref="Bpfilter.Backend.Loader.LimitMatch"/>): the kernel's own limit would start full
/// (nft_limit_init; no attribute sets its tokens), so a chain BPF drained would let a burst through on its move to the
/// kernel. Shared: a rule's anonymous limit, or a limit object a rule names (`limit name`), in an ip, ip6 or inet table
/// the kernel copy takes over from BPF, or already runs with BPF's bucket (its filter pinned), while a pin directory is
/// set. Its slot and bucket stay BPF's (kept limits), so the move back to BPF goes on from the same bucket too. A shared
/// limit object is not sent to the kernel: every kernel rule naming it runs the match on its one slot instead.
/// </summary>
public sealed partial class EnforcingBackend
{
    /// <summary>Per `limit` the next kernel transition sends, the pinned filter it runs instead (read by the kernel placement).</summary>
    Dictionary<LimitAt, string> _limitMatchPaths = [];
    /// <summary>
    /// <see cref="_limitMatchPaths"/> as the last commit sent them (null before the first): a kernel rollback sends that
    /// commit's rules again, and a rule naming a limit object the commit shared must run the match again (the kernel copy
    /// it goes back to does not hold the object: a plain objref would be refused, and the rollback with it).
    /// </summary>
    Dictionary<LimitAt, string>? _committedMatchPaths;
    /// <summary>The limits the staged round shares, by key: kept limits besides the lift's.</summary>
    Dictionary<StatefulKey, LimitStatement> _stagedShared = [];

    /// <summary>
    /// The shared limits of <paramref name="plan"/>'s kernel tables (see the class summary), with their filters pinned;
    /// the kernel placement's transitions send them as xt_bpf matches from now on. A table the batch deleted and added
    /// again shares none: its rules are new ones (the same handles again), whose limits start full on both sides.
    /// </summary>
    Dictionary<StatefulKey, LimitStatement> ShareLimits(PlacementPlan plan, IReadOnlyList<(byte Family, string Table)> recreated, IReadOnlySet<ulong> renewed)
    {
        var shared = new Dictionary<StatefulKey, LimitStatement>();
        var paths = new Dictionary<LimitAt, string>();
        if (_kernel != null)
            foreach (var (key, at, limit) in Sharable(plan, recreated, renewed))
            {
                if (_enforcer.LimitMatchPath(limit) is not { } path || !XtBpfMatch.Fits(path)) continue;
                shared[key] = limit;
                paths[at] = path;
            }
        _limitMatchPaths = paths;
        _kernel?.LimitMatchPath ??= at => _limitMatchPaths.TryGetValue(at, out var p) ? p : null;
        return shared;
    }

    /// <summary>
    /// The limits of <paramref name="plan"/>'s kernel tables whose bucket is BPF's to share (<see cref="Shared"/>), each where
    /// a rule runs it. Not a limit object of a table whose kernel copy holds an object map of limits: any element may name
    /// it, and the map's lookups can only reach the kernel's object.
    /// </summary>
    IEnumerable<(StatefulKey Key, LimitAt At, LimitStatement Limit)> Sharable(PlacementPlan plan, IReadOnlyList<(byte Family, string Table)> recreated,
        IReadOnlySet<ulong> renewed)
    {
        if (_kernel == null) yield break;
        foreach (var t in plan.KernelTables)
        {
            if (!XtBpfMatch.Runs(t.Family) || recreated.Contains((t.Family, t.Name))) continue;
            var objects = !t.Sets.Any(s => s.Set.ObjType == (uint)NftObjectType.Limit);
            foreach (var c in t.Chains)
                foreach (var r in c.Rules)
                    for (int i = 0; i < (r.Expressions?.Count ?? 0); i++)
                    {
                        if (r.Handle is not { } handle) continue;
                        var (key, l) = r.Expressions![i] switch
                        {
                            LimitExpr e => (new StatefulKey(t.Family, t.Name, c.Chain.Name!, handle, i, null), e),
                            ObjRefExpr { IsMap: false, ImmName: { } n } o when objects && o.ImmType == (uint)NftObjectType.Limit
                                && StatefulKey.Named(t.Family, t.Name, n) is var named => (named, LimitMoves.Find([t], named)),
                            _ => (default(StatefulKey), (LimitExpr?)null),
                        };
                        if (l != null && Shared(key, l, renewed) is { } limit)
                            yield return (key, new LimitAt(t.Family, t.Name, c.Chain.Name!, handle, i), limit);
                    }
        }
    }

    /// <summary>
    /// <paramref name="key"/>'s limit as BPF runs it, when its bucket is BPF's to share: BPF ran it at the last commit (the
    /// kernel does not hold it), or the kernel copy already runs BPF's bucket for it (its filter is pinned). A limit object
    /// also when BPF kept it while no rule named it, and not when the kernel's copy holds it (its bucket is the kernel's)
    /// or the batch made it anew (both sides' start full then).
    /// </summary>
    LimitStatement? Shared(StatefulKey key, LimitExpr l, IReadOnlySet<ulong> renewed)
    {
        if (!_slots.Limits.TryGet(key, out var slot)) return null;
        var named = key.Object != null;
        var heldByKernel = LimitMoves.Placed(_kernel!.Placed, key);
        if (named && (heldByKernel || renewed.Contains(slot))) return null;
        if (LimitStatements.TryLift(l, slot) is not { } limit) return null;
        var fromBpf = (_current?.Limits.TryGetValue(key, out var ran) == true && ran == slot
            || named && _keptLimits.TryGetValue(key, out var kept) && kept == slot) && !heldByKernel;
        return fromBpf || _enforcer.HasLimitMatch(limit) ? limit : null;
    }

    /// <summary>
    /// <paramref name="plan"/> without the limit objects of <paramref name="shared"/>: the kernel copy's rules run BPF's
    /// bucket for them, and the kernel's copy holding one would make its bucket the kernel's (<see cref="KernelKeptLimits"/>).
    /// </summary>
    static PlacementPlan WithoutSharedObjects(PlacementPlan plan, IEnumerable<StatefulKey> shared)
    {
        var names = shared.Where(k => k.Object != null).Select(k => (k.Family, k.Table, k.Object!)).ToHashSet();
        if (names.Count == 0) return plan;
        bool Shared(SourceTable t, Nft.Bytecode.Objects.NftObject o) => o.ObjectType == NftObjectType.Limit && names.Contains((t.Family, t.Name, o.Name ?? ""));
        return plan.WithKernelTables(plan.KernelTables
            .Select(t => t.Objects is { } objects && objects.Any(o => Shared(t, o)) ? t with { Objects = objects.Where(o => !Shared(t, o)).ToList() } : t).ToList());
    }

    /// <summary>
    /// The round's shared limits join the kept ones; those the same Prepare's earlier round added (<paramref name="earlier"/>)
    /// leave. Returns those this round added: a limit object BPF kept already (one only a chain the lift refused names) stays.
    /// </summary>
    HashSet<StatefulKey> KeepShared(Dictionary<StatefulKey, LimitStatement> kept, Dictionary<StatefulKey, LimitStatement> shared, IReadOnlySet<StatefulKey> earlier)
    {
        foreach (var key in earlier) kept.Remove(key);
        var added = shared.Keys.Where(k => !kept.ContainsKey(k)).ToHashSet();
        foreach (var (key, limit) in shared) kept[key] = limit;
        _stagedShared = shared;
        return added;
    }

    /// <summary>For a kernel rollback: the committed paths, then the failed round's for rules that commit did not send.</summary>
    void RollBackMatchPaths()
    {
        if (_committedMatchPaths is not { } committed) return;
        var paths = new Dictionary<LimitAt, string>(committed);
        foreach (var (at, path) in _limitMatchPaths) paths.TryAdd(at, path);
        _limitMatchPaths = paths;
    }
}
