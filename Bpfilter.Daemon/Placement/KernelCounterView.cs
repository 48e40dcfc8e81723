using Nft.Engine;
using Nft.Kernel;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Counters of kernel-placed rules and objects as nft should see them: the kernel's count since the
/// rule was placed, less what GETRULE_RESET/GETOBJ_RESET took away, plus what BPF counted in a rule both sides
/// counted before BPF's base chain moved to the kernel (<see cref="Carry"/>). One dump of the kernel's counters
/// serves a whole request (<see cref="Invalidate"/> at the start of each).
/// </summary>
internal sealed class KernelCounterView(KernelPlacement placement)
{
    readonly Dictionary<(byte, string, ulong, int), CounterValue> _ruleBase = [];
    readonly Dictionary<(byte, string, string), CounterValue> _objectBase = [];
    readonly Dictionary<(byte, string, ulong, int), CounterValue> _ruleCarried = [];
    readonly Dictionary<(byte, string, string), CounterValue> _objectCarried = [];
    Dictionary<(byte, string, ulong, int), CounterValue>? _rules;
    Dictionary<(byte, string, string), CounterValue>? _objects;

    /// <summary>Where the quotas the kernel took over from BPF count from.</summary>
    public KernelQuotaStarts QuotaStarts { get; } = new();

    /// <summary>The reset baselines, for the state file.</summary>
    public (IReadOnlyDictionary<(byte, string, ulong, int), CounterValue> Rules, IReadOnlyDictionary<(byte, string, string), CounterValue> Objects) Baselines =>
        (_ruleBase, _objectBase);

    /// <summary>What the kernel's rules list besides their own count, for the state file.</summary>
    public IReadOnlyDictionary<(byte, string, ulong, int), CounterValue> Carried => _ruleCarried;

    /// <summary>What the kernel's named counters list besides their own count, for the state file.</summary>
    public IReadOnlyDictionary<(byte, string, string), CounterValue> ObjectsCarried => _objectCarried;

    /// <summary>Has a kernel named counter list <paramref name="v"/> (what BPF counted for it after its count went to the kernel) besides its own.</summary>
    public void CarryObject(byte family, string table, string name, CounterValue v) =>
        _objectCarried[(family, table, name)] = Plus(_objectCarried.GetValueOrDefault((family, table, name)), v);

    public void RestoreObjectCarried(byte family, string table, string name, CounterValue v) => _objectCarried[(family, table, name)] = v;

    /// <summary>
    /// Has a kernel rule list <paramref name="v"/> (BPF's part of a counter both sides counted) besides its own count:
    /// the kernel's rule is not made anew (its handle would change), so its count stays the kernel's part.
    /// </summary>
    public void Carry(byte family, string table, ulong handle, int index, CounterValue v) =>
        _ruleCarried[(family, table, handle, index)] = Plus(_ruleCarried.GetValueOrDefault((family, table, handle, index)), v);

    /// <summary>Restores reset baselines saved by an earlier run (the kernel's counters ran on meanwhile).</summary>
    public void RestoreRule(byte family, string table, ulong handle, int index, CounterValue v) => _ruleBase[(family, table, handle, index)] = v;
    public void RestoreObject(byte family, string table, string name, CounterValue v) => _objectBase[(family, table, name)] = v;
    public void RestoreCarried(byte family, string table, ulong handle, int index, CounterValue v) => _ruleCarried[(family, table, handle, index)] = v;

    /// <summary>Rules the kernel reset in its own copy during this request (<see cref="RuleResetInKernel"/>).</summary>
    readonly HashSet<(byte, string, ulong)> _resetInKernel = [];

    /// <summary>A request starts: the kernel's counters are read anew.</summary>
    public void BeginRequest()
    {
        _resetInKernel.Clear();
        Invalidate();
    }

    /// <summary>Whether the kernel reset the rule in its own copy during this request.</summary>
    public bool ResetInKernel(byte family, string table, ulong handle) => _resetInKernel.Contains((family, table, handle));

    /// <summary>
    /// The kernel reset the rule in its own copy (GETRULE_RESET, for its quotas): its counters count from nothing there, so
    /// their baselines go, and the same reset's counters take none.
    /// </summary>
    public void RuleResetInKernel(byte family, string table, ulong handle)
    {
        _resetInKernel.Add((family, table, handle));
        foreach (var k in _ruleBase.Keys.Where(k => k.Item1 == family && k.Item2 == table && k.Item3 == handle).ToList()) _ruleBase.Remove(k);
        // BPF's part listed besides goes too: the reset lists the rule from nothing
        foreach (var k in _ruleCarried.Keys.Where(k => k.Item1 == family && k.Item2 == table && k.Item3 == handle).ToList()) _ruleCarried.Remove(k);
        Invalidate();
    }

    public void Invalidate()
    {
        _rules = null;
        _objects = null;
    }

    public CounterValue? Rule(byte family, string table, ulong handle, int index) =>
        Snapshot().Rules.TryGetValue((family, table, handle, index), out var v)
            ? Plus(v.Since(_ruleBase.GetValueOrDefault((family, table, handle, index))), _ruleCarried.GetValueOrDefault((family, table, handle, index)))
            : null;

    public CounterValue? Object(byte family, string table, string name) =>
        Snapshot().Objects.TryGetValue((family, table, name), out var v)
            ? Plus(v.Since(_objectBase.GetValueOrDefault((family, table, name))), _objectCarried.GetValueOrDefault((family, table, name)))
            : null;

    public void ResetRule(byte family, string table, ulong handle, int index)
    {
        _ruleCarried.Remove((family, table, handle, index));
        if (_resetInKernel.Contains((family, table, handle))) return;
        if (Snapshot().Rules.TryGetValue((family, table, handle, index), out var v)) _ruleBase[(family, table, handle, index)] = v;
    }

    public void ResetObject(byte family, string table, string name)
    {
        _objectCarried.Remove((family, table, name));
        if (Snapshot().Objects.TryGetValue((family, table, name), out var v)) _objectBase[(family, table, name)] = v;
    }

    /// <summary>An object reset in the kernel's own copy (a quota): the kernel's count is the listing's again.</summary>
    public void ForgetObjectBaseline(byte family, string table, string name)
    {
        _objectBase.Remove((family, table, name));
        _objectCarried.Remove((family, table, name));
        Invalidate();
    }

    /// <summary>
    /// Forgets the reset baselines and quota start points of what a transaction renewed (<see cref="KernelRenewal"/>): the
    /// kernel's new rules and objects, by the same handles and names, count from what the transaction gave them.
    /// </summary>
    public void Forget(KernelRenewal renewed)
    {
        QuotaStarts.Forget(renewed);
        bool Table(byte family, string table) => renewed.Tables.Contains(new TableKey(family, table));
        foreach (var k in _ruleBase.Keys.Where(k => Table(k.Item1, k.Item2)).ToList()) _ruleBase.Remove(k);
        foreach (var k in _ruleCarried.Keys.Where(k => Table(k.Item1, k.Item2)).ToList()) _ruleCarried.Remove(k);
        bool Object((byte, string, string) k) => Table(k.Item1, k.Item2) || renewed.Objects.Any(o => o.Table == new TableKey(k.Item1, k.Item2) && o.Name == k.Item3);
        foreach (var k in _objectBase.Keys.Where(Object).ToList()) _objectBase.Remove(k);
        foreach (var k in _objectCarried.Keys.Where(Object).ToList()) _objectCarried.Remove(k);
    }

    /// <summary>Forgets reset baselines of rules and objects the kernel no longer holds.</summary>
    public void Retain(IReadOnlyList<Nft.Bytecode.Objects.SourceTable> placed)
    {
        var rules = placed.SelectMany(t => t.Chains.SelectMany(c => c.Rules).Select(r => (t.Family, t.Name, r.Handle ?? 0))).ToHashSet();
        foreach (var k in _ruleBase.Keys.Where(k => !rules.Contains((k.Item1, k.Item2, k.Item3))).ToList()) _ruleBase.Remove(k);
        foreach (var k in _ruleCarried.Keys.Where(k => !rules.Contains((k.Item1, k.Item2, k.Item3))).ToList()) _ruleCarried.Remove(k);
        var objects = placed.SelectMany(t => (t.Objects ?? []).Select(o => (t.Family, t.Name, o.Name ?? ""))).ToHashSet();
        foreach (var k in _objectBase.Keys.Where(k => !objects.Contains(k)).ToList()) _objectBase.Remove(k);
        foreach (var k in _objectCarried.Keys.Where(k => !objects.Contains(k)).ToList()) _objectCarried.Remove(k);
        Invalidate();
    }

    static CounterValue Plus(CounterValue v, CounterValue b) => new(v.Packets + b.Packets, v.Bytes + b.Bytes);

    (Dictionary<(byte, string, ulong, int), CounterValue> Rules, Dictionary<(byte, string, string), CounterValue> Objects) Snapshot()
    {
        if (_rules != null && _objects != null) return (_rules, _objects);
        var c = placement.ReadCounters();
        _rules = [];
        foreach (var r in c.Rules) _rules[(r.Family, r.Table, r.RuleHandle, r.ExpressionIndex)] = new CounterValue(r.Packets, r.Bytes);
        _objects = [];
        foreach (var o in c.Objects)
            if (o.Packets is { } p) _objects[(o.Family, o.Table, o.Name)] = new CounterValue(p, o.Bytes ?? 0);
            else if (o.QuotaConsumedSincePlaced is { } q) _objects[(o.Family, o.Table, o.Name)] = new CounterValue(0, q);
        return (_rules, _objects);
    }
}
