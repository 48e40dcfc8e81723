using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Kernel;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// When a packet last reached each limit of the kernel's copy, from the hidden `last` expressions placed before every
/// expression that may run one (<see cref="HiddenLast"/>). The kernel lists no token state, but a bucket no packet
/// reached for as long as an empty one takes to refill (nft_limit_init's tokens_max) is full, and one no packet reached
/// since it was placed is as full as it started: only then is BPF's new bucket, which starts full, the kernel's. A
/// limit whose bucket is not known full keeps its chains in the kernel (<see cref="NotFull"/>), re-checked at every
/// commit and when it could be known full (<see cref="FullAt"/>, <see cref="Bpfilter.Daemon.Enforcement.HeldChains"/>). Remembered across commits: a rule the kernel copy replaces takes its `last` along, while the limit object or
/// set element it reached stays.
/// </summary>
public sealed class KernelLimitIdle
{
    /// <summary>What a hidden `last` sees reached: a rule's limit, a limit object, or a set's elements.</summary>
    readonly record struct Target(byte Family, string Table, string? Chain, ulong Rule, int Index, string? Object, string? Set);

    /// <summary>Per target, when a packet last reached it (ms, <see cref="Environment.TickCount64"/>).</summary>
    readonly Dictionary<Target, long> _reached = [];
    /// <summary>
    /// Targets a rule of the kernel's copy reached without a hidden `last` before it, at some observation while they
    /// were held: what that rule did to the bucket is not known, so it is never known full while the target lives.
    /// </summary>
    readonly HashSet<Target> _unwatched = [];
    /// <summary>The kernel's rules could not be read at the last observation: no bucket is known full.</summary>
    string? _unread;
    /// <summary>What an earlier daemon of this boot remembered was restored (<see cref="Restore"/>): adoption marks nothing.</summary>
    bool _restored;

    /// <summary>One remembered target for the state file; <paramref name="At"/> null: reached without a hidden `last`.</summary>
    public sealed record Reached(byte Family, string Table, string? Chain, ulong Rule, int Index, string? Object, string? Set, long? At);

    /// <summary>
    /// The memory as the state file keeps it: times are <see cref="Environment.TickCount64"/> (CLOCK_MONOTONIC on Linux,
    /// counted from the boot, not from the process), so they hold for a restarted daemon of the same boot (<paramref name="BootId"/>).
    /// </summary>
    public sealed record Memory(string BootId, List<Reached> Reached);

    /// <summary>This boot's id (/proc/sys/kernel/random/boot_id); empty when it cannot be read (nothing restored then).</summary>
    public static string BootId()
    {
        try { return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(); }
        catch (IOException) { return ""; }
        catch (UnauthorizedAccessException) { return ""; }
    }

    /// <summary>What is remembered, for the state file.</summary>
    public Memory Export(string bootId) => new(bootId,
        _reached.Where(r => !_unwatched.Contains(r.Key)).Select(r => ToSaved(r.Key, r.Value))
            .Concat(_unwatched.Select(t => ToSaved(t, null))).ToList());

    static Reached ToSaved(Target t, long? at) => new(t.Family, t.Table, t.Chain, t.Rule, t.Index, t.Object, t.Set, at);

    /// <summary>
    /// Takes what an earlier daemon remembered when it was taken in this boot (<paramref name="bootId"/>); a state file of
    /// another boot, or of a version before the memory was kept, restores nothing and <see cref="Adopted"/> marks every limit.
    /// An unwatched target is saved without its time (<see cref="NotFull"/> reads unwatched first).
    /// </summary>
    public void Restore(Memory? saved, string bootId)
    {
        if (saved == null || bootId.Length == 0 || saved.BootId != bootId) return;
        foreach (var r in saved.Reached)
        {
            var t = new Target(r.Family, r.Table, r.Chain, r.Rule, r.Index, r.Object, r.Set);
            if (r.At is { } at) _reached[t] = at;
            else _unwatched.Add(t);
        }
        _restored = true;
    }

    /// <summary>Whether <paramref name="placed"/> hold a limit (of a rule, an object or a set's elements) at all.</summary>
    public static bool Any(IReadOnlyList<SourceTable> placed) => placed.Any(t =>
        t.Objects?.Any(o => o.ObjectType == NftObjectType.Limit) == true
        || t.Sets.Any(s => s.Set.Expr is LimitExpr || s.Set.Expressions?.Any(x => x is LimitExpr) == true
            || s.Elements.Any(e => e.Expr is LimitExpr || e.Expressions?.Any(x => x is LimitExpr) == true))
        || t.Chains.Any(c => c.Rules.Any(r => r.Expressions?.Any(x => x is LimitExpr) == true)));

    /// <summary>Takes in <paramref name="lasts"/>, read at <paramref name="now"/>, and forgets what <paramref name="placed"/> no longer hold.</summary>
    public void Observe(IReadOnlyList<SourceTable> placed, IReadOnlyList<LastReached> lasts, long now)
    {
        _unread = null;
        foreach (var l in lasts)
        {
            if (l.Unwatched)
            {
                foreach (var t in Targets(placed, l)) _unwatched.Add(t);
                continue;
            }
            if (l.AgoMs is not { } ago) continue;
            var at = now - (long)ago;
            foreach (var t in Targets(placed, l))
                if (!_reached.TryGetValue(t, out var was) || was < at) _reached[t] = at;
        }
        foreach (var t in _reached.Keys.Where(t => !Holds(placed, t)).ToList()) _reached.Remove(t);
        _unwatched.RemoveWhere(t => !Holds(placed, t));
    }

    /// <summary>
    /// <paramref name="adopted"/>, the kernel's tables a restarted daemon took over as they run at <paramref name="now"/>:
    /// what an earlier daemon's rules did to their limits (a rule deleted before the restart took its `last` along, while
    /// the limit object or set it reached stays) is not known, so each limit counts as reached then and is known full
    /// only once hidden `last`s have watched it idle for its refill time.
    /// </summary>
    public void Adopted(IReadOnlyList<SourceTable> adopted, long now)
    {
        if (_restored) return;
        foreach (var table in adopted)
        {
            var targets = new List<Target>();
            foreach (var o in table.Objects ?? [])
                if (o.ObjectType == NftObjectType.Limit) targets.Add(new Target(table.Family, table.Name, null, 0, 0, o.Name, null));
            foreach (var s in table.Sets)
                targets.Add(new Target(table.Family, table.Name, null, 0, 0, null, s.Name));
            foreach (var c in table.Chains)
                foreach (var r in c.Rules)
                    for (int i = 0; i < (r.Expressions?.Count ?? 0); i++)
                        if (r.Expressions![i] is LimitExpr) targets.Add(new Target(table.Family, table.Name, c.Name, r.Handle ?? 0, i, null, null));
            foreach (var t in targets)
                if (!_reached.TryGetValue(t, out var was) || was < now) _reached[t] = now;
        }
    }

    /// <summary>The kernel's rules could not be read: until they are, no bucket is known full.</summary>
    public void Unread(string why) => _unread = why;

    /// <summary>
    /// Per limit of <paramref name="keys"/> that <paramref name="placed"/> hold, why its bucket is not known full at
    /// <paramref name="now"/>: jiffies count whole ticks, so the time since a packet reached it is taken one
    /// <paramref name="tickMs"/> short.
    /// </summary>
    public Dictionary<StatefulKey, string> NotFull(IReadOnlyList<SourceTable> placed, IEnumerable<StatefulKey> keys, long now, long tickMs)
    {
        var notes = new Dictionary<StatefulKey, string>();
        foreach (var key in keys)
        {
            if (LimitMoves.Find(placed, key) is not { } limit) continue;
            var refill = RefillMs(limit);
            if (_unread != null) notes[key] = $"{key} ({_unread})";
            else if (_unwatched.Contains(TargetOf(key))) notes[key] = $"{key} (a rule of the kernel's copy reaches it without a hidden last: when it was last reached is not known)";
            else if (_reached.TryGetValue(TargetOf(key), out var at) && now - at - tickMs < refill)
                notes[key] = $"{key} (reached {now - at} ms ago, full {refill} ms after)";
        }
        return notes;
    }

    /// <summary>
    /// When the bucket of the limit <paramref name="placed"/> hold under <paramref name="key"/> is known full, as
    /// <see cref="NotFull"/> judges it from what was observed so far (<see cref="long.MinValue"/>: already); null when
    /// it is not held, or no time would tell (its rules could not be read, or a rule reaches it without a hidden `last`).
    /// </summary>
    public long? FullAt(IReadOnlyList<SourceTable> placed, StatefulKey key, long tickMs)
    {
        if (LimitMoves.Find(placed, key) is not { } limit || _unread != null || _unwatched.Contains(TargetOf(key))) return null;
        if (!_reached.TryGetValue(TargetOf(key), out var at)) return long.MinValue;
        var refill = RefillMs(limit);
        return refill > long.MaxValue - at - tickMs ? null : at + tickMs + refill;
    }

    /// <summary>How long an empty bucket takes to refill, in whole ms (nft_limit_init's tokens_max).</summary>
    static long RefillMs(LimitExpr l)
    {
        var packets = (l.Type ?? LimitExpr.TypePackets) == LimitExpr.TypePackets;
        var burst = l.Burst ?? 0;
        if (packets && burst == 0) burst = LimitStatements.DefaultPacketBurst;
        return l.Unit <= ulong.MaxValue / 1_000_000_000 && l.Rate > 0 && LimitStatement.TokensMax(l.Rate, l.Unit * 1_000_000_000, burst, packets) is { } ns
            ? (long)((ns + 999_999) / 1_000_000) : long.MaxValue;
    }

    static Target TargetOf(StatefulKey key) =>
        key.Object is { } name ? new Target(key.Family, key.Table, null, 0, 0, name, null)
        : key.ElementKey != null ? new Target(key.Family, key.Table, null, 0, 0, null, key.Chain)
        : new Target(key.Family, key.Table, key.Chain, key.RuleHandle, key.ExpressionIndex, null, null);

    /// <summary>The limits a packet reaching <paramref name="l"/>'s expression may run.</summary>
    static IEnumerable<Target> Targets(IReadOnlyList<SourceTable> placed, LastReached l)
    {
        switch (l.Before)
        {
            case LimitExpr:
                yield return new Target(l.Family, l.Table, l.Chain, l.RuleHandle, l.ExpressionIndex, null, null);
                break;
            case ObjRefExpr { IsMap: false, ImmName: { } name, ImmType: var type } when type == (uint)NftObjectType.Limit:
                yield return new Target(l.Family, l.Table, null, 0, 0, name, null);
                break;
            case ObjRefExpr { IsMap: true }:
                // an object map may name any limit of its table
                foreach (var o in placed.FirstOrDefault(t => t.Family == l.Family && t.Name == l.Table)?.Objects ?? [])
                    if (o.ObjectType == NftObjectType.Limit) yield return new Target(l.Family, l.Table, null, 0, 0, o.Name, null);
                break;
            case LookupExpr { Set: var set }:
                yield return new Target(l.Family, l.Table, null, 0, 0, null, set);
                break;
            case DynsetExpr { SetName: var set }:
                yield return new Target(l.Family, l.Table, null, 0, 0, null, set);
                break;
        }
    }

    static bool Holds(IReadOnlyList<SourceTable> placed, Target t)
    {
        if (placed.FirstOrDefault(p => p.Family == t.Family && p.Name == t.Table) is not { } table) return false;
        if (t.Object is { } name) return table.Objects?.Any(o => o.Name == name && o.ObjectType == NftObjectType.Limit) == true;
        if (t.Set is { } set) return table.FindSet(set) != null;
        return table.FindChain(t.Chain ?? "")?.Rules.FirstOrDefault(r => r.Handle == t.Rule) is { Expressions: { } x }
            && t.Index < x.Count && x[t.Index] is LimitExpr;
    }
}
