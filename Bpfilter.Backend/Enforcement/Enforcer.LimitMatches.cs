using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The socket filters (<see cref="LimitMatch"/>) through which the kernel's copy of a rule runs a limit's bucket in the
/// shared limit map, pinned under <see cref="PinRoot"/>/<see cref="LimitMatchDir"/> (xt_bpf opens them by path), one per
/// limit, named after its slot and configuration. The kernel rule holds its program; the pin names it for the next rules,
/// and for a restarted daemon it says the kernel copy runs BPF's bucket.
/// </summary>
public sealed partial class Enforcer
{
    public const string LimitMatchDir = "limit-matches";

    BpfMap? _limitOuter;
    LimitMap? _limitOuterOf;

    static string LimitMatchName(LimitStatement l) =>
        $"slot{l.StateSlot}-{l.Rate}-{l.Nsecs}-{l.Burst}-{(l.Type == LimitType.Bytes ? "b" : "p")}{(l.Over ? "-over" : "")}";

    string? LimitMatchPin(LimitStatement l) => PinRoot is { } root ? Path.Combine(root, LimitMatchDir, LimitMatchName(l)) : null;

    /// <summary>Whether the filter of <paramref name="l"/> is pinned: a kernel copy was sent with it (by this process or an earlier one).</summary>
    public bool HasLimitMatch(LimitStatement l) => LimitMatchPin(l) is { } pin && File.Exists(pin);

    /// <summary>
    /// Where the filter running <paramref name="l"/>'s bucket is pinned (loaded and pinned now if it is not yet); null
    /// without a pin root, when the bucket is not BPF's (<see cref="KeepsLimitBucket"/> for this very limit), or when the
    /// filter cannot be loaded (the kernel copy then runs a limit of its own, as before).
    /// </summary>
    public string? LimitMatchPath(LimitStatement l)
    {
        if (LimitMatchPin(l) is not { } pin || _limits == null || !LimitMap.Holds(l.StateSlot)) return null;
        var ours = _limitBuckets.TryGetValue(l.StateSlot, out var was) ? was == l : _inheritedLimits.Contains(l.StateSlot);
        if (!ours) return null;
        if (File.Exists(pin)) return pin;
        try
        {
            if (_limitOuter == null || !ReferenceEquals(_limitOuterOf, _limits))
            {
                _limitOuter?.Dispose();
                _limitOuter = LimitMatch.Outer(_limits);
                _limitOuterOf = _limits;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(pin)!);
            using var program = LimitMatch.Load(l, _limitOuter);
            program.Pin(pin);
            return pin;
        }
        catch (Exception e) when (e is BpfException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Unpins every limit filter but those of <paramref name="keep"/> (their kernel rules are gone or never were).</summary>
    public void RetainLimitMatches(IEnumerable<LimitStatement> keep)
    {
        if (PinRoot is not { } root || !Directory.Exists(Path.Combine(root, LimitMatchDir))) return;
        var names = keep.Select(LimitMatchName).ToHashSet(StringComparer.Ordinal);
        foreach (var pin in Directory.EnumerateFiles(Path.Combine(root, LimitMatchDir)))
            if (!names.Contains(Path.GetFileName(pin)))
                File.Delete(pin);
    }
}
