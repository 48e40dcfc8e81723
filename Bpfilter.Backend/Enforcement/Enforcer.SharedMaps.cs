using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The shared quota and limit maps across a restart: pinned once at the pin root (<see cref="QuotasPin"/>,
/// <see cref="LimitsPin"/>, the very maps every pinned program references), reopened by a restarted enforcer
/// so that adopted programs, programs loaded later and quota reads all use the same state; the slots the
/// earlier process filled keep their consumption and buckets (<see cref="Inherit"/>).
/// </summary>
public sealed partial class Enforcer
{
    public const string QuotasPin = "quotas", LimitsPin = "limits";

    /// <summary>Whether the shared maps are pinned at the pin root by this enforcer (or were reopened from there).</summary>
    bool _quotasPinned, _limitsPinned;
    /// <summary>What <see cref="Inherit"/> was told, effective only for a map <see cref="ReopenSharedMaps"/> reopened.</summary>
    IReadOnlyDictionary<ulong, ulong> _toInheritQuotas = new Dictionary<ulong, ulong>();
    IReadOnlySet<ulong> _toInheritLimits = new HashSet<ulong>();
    /// <summary>Quota slots (with their base) and limit slots whose state in a reopened map is the earlier process's, until the first commit.</summary>
    IReadOnlyDictionary<ulong, ulong> _inheritedQuotas = new Dictionary<ulong, ulong>();
    IReadOnlySet<ulong> _inheritedLimits = new HashSet<ulong>();

    /// <summary>
    /// The quota slots (with what each one's `used` started from, <see cref="QuotaBase"/>) and limit slots an
    /// earlier process held for the keys the front-end restored to the same slots: if <see cref="ReopenSharedMaps"/>
    /// reopens the maps, the first commit keeps their state instead of starting them anew.
    /// </summary>
    public void Inherit(IReadOnlyDictionary<ulong, ulong> quotaBases, IReadOnlySet<ulong> limitSlots)
    {
        _toInheritQuotas = quotaBases;
        _toInheritLimits = limitSlots;
    }

    /// <summary>Per attach point key, the counter layout of the program an earlier process ran there (for <see cref="Adopt(Ruleset, string, out int)"/>).</summary>
    IReadOnlyDictionary<string, CounterLayout> _inheritedCounterLayouts = new Dictionary<string, CounterLayout>();

    /// <summary>
    /// The counter layouts (<see cref="CounterLayouts"/>) an earlier process saved: the programs it kept while
    /// rules were added hold counters in slots a fresh compilation would not choose, so <see cref="Adopt(Ruleset, string, out int)"/>
    /// compiles with them to find and keep those programs.
    /// </summary>
    public void InheritCounterLayouts(IReadOnlyDictionary<string, CounterLayout> layouts) => _inheritedCounterLayouts = layouts;

    /// <summary>Per attach point key, the counter layout of the program running there (saved for <see cref="InheritCounterLayouts"/>).</summary>
    public IReadOnlyDictionary<string, CounterLayout> CounterLayouts =>
        _live.Values.Where(a => a.Program != null).ToDictionary(a => a.Key, a => CounterLayout.Of(a.Program!.Compiled), StringComparer.Ordinal);

    /// <summary>Per packet-written set, the element statement lists of the programs an earlier process ran (for <see cref="Adopt(Ruleset, string, out int)"/>).</summary>
    IReadOnlyDictionary<string, ValueList<ValueList<Statement>>> _inheritedElementLists = new Dictionary<string, ValueList<ValueList<Statement>>>();

    /// <summary>
    /// The element statement lists (<see cref="ElementStatementLists"/>) an earlier process saved: the pinned programs hold
    /// elements tagged with their index there, so <see cref="Adopt(Ruleset, string, out int)"/> compiles with them to find
    /// and keep those programs with their elements.
    /// </summary>
    public void InheritElementLists(IReadOnlyDictionary<string, ValueList<ValueList<Statement>>> lists) => _inheritedElementLists = lists;

    /// <summary>Per packet-written set whose running programs hold several element statement lists (<see cref="Set.PacketStatementLists"/>), those lists.</summary>
    public IReadOnlyDictionary<string, ValueList<ValueList<Statement>>> ElementStatementLists
    {
        get
        {
            var lists = new Dictionary<string, ValueList<ValueList<Statement>>>(StringComparer.Ordinal);
            foreach (var p in LivePrograms)
                foreach (var (name, layout) in p.Compiled.SetLayouts)
                    if (!layout.Set.PacketStatementLists.IsEmpty) lists.TryAdd(name, layout.Set.PacketStatementLists);
            return lists;
        }
    }

    /// <summary>What a committed quota slot's `used` starts from (saved with the slot, for <see cref="Inherit"/>).</summary>
    public ulong? QuotaBase(ulong slot) => _quotaBase.TryGetValue(slot, out var b) ? b : null;

    /// <summary>Whether a limit slot has a bucket in the shared map for the committed ruleset (for <see cref="Inherit"/>).</summary>
    public bool HoldsLimit(ulong slot) => _limitBuckets.ContainsKey(slot);

    /// <summary>Whether a limit slot's bucket is BPF's: the committed ruleset's, or one an earlier process left in the reopened map (until the first commit).</summary>
    public bool KeepsLimitBucket(ulong slot) => _limitBuckets.ContainsKey(slot) || _inheritedLimits.Contains(slot);

    /// <summary>
    /// A committed limit slot's bucket refilled to now as nft_limit_eval refills it (capped at its size), with that size,
    /// in nanoseconds; null for a slot without a bucket. The clock is bpf_ktime_get_ns's, CLOCK_MONOTONIC (.NET's
    /// Stopwatch on Linux): a bucket is full when its tokens plus the time since its last packet reach the size.
    /// </summary>
    public (ulong Tokens, ulong Max)? LimitTokens(ulong slot)
    {
        if (_limits == null || !LimitMap.Holds(slot) || !_limitBuckets.TryGetValue(slot, out var limit)) return null;
        var (last, tokens) = _limits.Read(slot);
        var now = (ulong)((UInt128)(ulong)System.Diagnostics.Stopwatch.GetTimestamp() * 1_000_000_000UL / (ulong)System.Diagnostics.Stopwatch.Frequency);
        var refilled = now > last ? (UInt128)tokens + (now - last) : tokens;
        return ((ulong)UInt128.Min(refilled, limit.Max), limit.Max);
    }

    /// <summary>
    /// Reopens the shared maps pinned under <paramref name="dir"/> by an earlier process, before anything is
    /// loaded. A pin that is missing, or not a map of the expected shape, is not used: that map starts anew (and
    /// the next <see cref="SyncPins"/> replaces the pin). Returns what happened to each, for the log.
    /// </summary>
    public IReadOnlyList<string> ReopenSharedMaps(string dir)
    {
        var notes = new List<string>();
        if (_quotas == null && Reopen(dir, QuotasPin, QuotaMap.Adopt, notes) is { } q)
        {
            _quotas = q;
            _quotasPinned = true;
            _inheritedQuotas = _toInheritQuotas;
        }
        if (_limits == null && Reopen(dir, LimitsPin, LimitMap.Adopt, notes) is { } l)
        {
            _limits = l;
            _limitsPinned = true;
            _inheritedLimits = _toInheritLimits;
        }
        return notes;
    }

    static T? Reopen<T>(string dir, string name, Func<BpfMap, T> adopt, List<string> notes) where T : class
    {
        var path = Path.Combine(dir, name);
        if (!File.Exists(path))
        {
            notes.Add($"no pinned {name} map: its states start anew");
            return null;
        }
        BpfMap? map = null;
        try
        {
            map = BpfMap.Open(path);
            var adopted = adopt(map);
            notes.Add($"reopened the pinned {name} map");
            return adopted;
        }
        catch (Exception e) when (e is BpfException or InvalidDataException)
        {
            map?.Dispose();
            notes.Add($"the pinned {name} map cannot be used ({e.Message}): its states start anew");
            return null;
        }
    }

    void ForgetInherited()
    {
        _inheritedQuotas = new Dictionary<ulong, ulong>();
        _inheritedLimits = new HashSet<ulong>();
    }

    /// <summary>Pins the shared maps at <paramref name="root"/> once, replacing what an earlier process left there; without a map, removes its stale pin.</summary>
    IEnumerable<string> PinSharedMaps(string root)
    {
        var errors = new List<string>();
        void Sync(string name, BpfMap? map, ref bool pinned)
        {
            if (pinned) return;
            var path = Path.Combine(root, name);
            try
            {
                if (File.Exists(path)) File.Delete(path);
                if (map == null) return;
                Directory.CreateDirectory(root);
                map.Pin(path);
                pinned = true;
            }
            catch (Exception e) when (e is BpfException or IOException or UnauthorizedAccessException)
            {
                errors.Add($"pinning the shared {name} map at {path} failed, a restart starts its states anew: {e.Message}");
            }
        }
        Sync(QuotasPin, _quotas?.Map, ref _quotasPinned);
        Sync(LimitsPin, _limits?.Map, ref _limitsPinned);
        return errors;
    }
}
