using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Keeps rule counters continuous across program reloads. A reload gives the new program fresh
/// per-CPU counter maps, so the totals of the program it replaced are carried over (read after the
/// swap, when it no longer counts); a reset remembers the running total as the new zero.
/// Keyed by the lifter's counter slot ids, which are stable for a rule across transactions.
/// </summary>
internal sealed class CounterLedger
{
    readonly Dictionary<ulong, (ulong Packets, ulong Bytes)> _carried = new();
    readonly Dictionary<ulong, (ulong Packets, ulong Bytes)> _zero = new();

    /// <summary>Adds a retired program's totals to what its counters carry.</summary>
    public void Fold(LoadedProgram retired)
    {
        foreach (var id in retired.Compiled.CounterSlots.Keys)
        {
            var (p, b) = retired.Counter(id);
            var (cp, cb) = _carried.GetValueOrDefault(id);
            _carried[id] = (cp + p, cb + b);
        }
    }

    public (ulong Packets, ulong Bytes) Read(ulong id, (ulong Packets, ulong Bytes) running)
    {
        var (cp, cb) = _carried.GetValueOrDefault(id);
        var (zp, zb) = _zero.GetValueOrDefault(id);
        ulong p = running.Packets + cp, b = running.Bytes + cb;
        return (p >= zp ? p - zp : 0, b >= zb ? b - zb : 0);
    }

    public void Reset(ulong id, (ulong Packets, ulong Bytes) running)
    {
        var (cp, cb) = _carried.GetValueOrDefault(id);
        _zero[id] = (running.Packets + cp, running.Bytes + cb);
    }

    /// <summary>Has a counter id read <paramref name="value"/> now: carried and baseline chosen so that running + carried - zero is it.</summary>
    public void Set(ulong id, (ulong Packets, ulong Bytes) running, (ulong Packets, ulong Bytes) value)
    {
        static ulong Over(ulong a, ulong b) => a > b ? a - b : 0;
        _carried[id] = (Over(value.Packets, running.Packets), Over(value.Bytes, running.Bytes));
        _zero[id] = (Over(running.Packets, value.Packets), Over(running.Bytes, value.Bytes));
    }

    /// <summary>What a counter id carries from replaced programs and its reset baseline.</summary>
    public ((ulong Packets, ulong Bytes) Carried, (ulong Packets, ulong Bytes) Zero) Entry(ulong id) =>
        (_carried.GetValueOrDefault(id), _zero.GetValueOrDefault(id));

    /// <summary>Sets what a counter id carries and its baseline (a restarted daemon restoring them).</summary>
    public void Restore(ulong id, (ulong Packets, ulong Bytes) carried, (ulong Packets, ulong Bytes) zero)
    {
        _carried[id] = carried;
        _zero[id] = zero;
    }

    /// <summary>
    /// Drops what belonged to slots no rule holds any more (the lifter hands them out again), <paramref name="live"/>
    /// asked of each slot held here: no set of all live slots is built on each commit.
    /// </summary>
    public void Forget(Func<ulong, bool> live)
    {
        Drop(_carried, live);
        Drop(_zero, live);
    }

    static void Drop(Dictionary<ulong, (ulong Packets, ulong Bytes)> by, Func<ulong, bool> live)
    {
        List<ulong>? gone = null;
        foreach (var id in by.Keys)
            if (!live(id)) (gone ??= []).Add(id);
        foreach (var id in gone ?? []) by.Remove(id);
    }
}
