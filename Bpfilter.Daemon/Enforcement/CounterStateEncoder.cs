using System.Text;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Daemon.Placement;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// <see cref="CounterState.Encode"/> for a state exported after every commit: the same bytes, but the leading BPF
/// counter entries equal to the previous export's keep that export's bytes (one copy) instead of being written again.
/// An entry's bytes depend on the entry alone, and the lift keeps its counters in collection order (a rule appended to
/// the last chain adds its entry at the end), so a one-rule add writes one entry and the sections after the entries.
/// The entries are still compared one by one (their ledger values may change anywhere); the encoding is what it saved.
/// </summary>
internal sealed class CounterStateEncoder
{
    /// <summary>The previous export, its entries, and where each entry's bytes start in it (one more: where the entries end).</summary>
    byte[] _last = [];
    List<CounterState.Bpf> _lastEntries = [];
    int[] _lastStarts = [CounterState.HeadSize];

    public byte[] Encode(List<CounterState.Bpf> bpf, KernelCounterView? kernel, IEnumerable<CounterState.Quota>? quotas,
        IEnumerable<CounterState.Limit>? limits, IReadOnlyDictionary<string, CounterLayout>? layouts,
        IReadOnlyDictionary<string, ValueList<ValueList<Statement>>>? elementLists, IReadOnlyCollection<(KernelObjectKey Key, UnplacedCount Count)>? unplaced = null,
        KernelLimitIdle.Memory? limitsReached = null)
    {
        int same = 0, max = Math.Min(bpf.Count, _lastEntries.Count);
        while (same < max && bpf[same].Equals(_lastEntries[same])) same++;

        using var ms = new MemoryStream(_last.Length + 256);
        using var w = new BinaryWriter(ms, Encoding.UTF8);
        CounterState.WriteHead(w, bpf.Count);
        w.Flush();
        var starts = new int[bpf.Count + 1];
        Array.Copy(_lastStarts, starts, same + 1);
        if (same > 0) ms.Write(_last, CounterState.HeadSize, _lastStarts[same] - CounterState.HeadSize);
        for (int i = same; i < bpf.Count; i++)
        {
            CounterState.Write(w, bpf[i]);
            w.Flush();
            starts[i + 1] = (int)ms.Position;
        }
        CounterState.WriteRest(w, kernel, quotas, limits, layouts, elementLists, unplaced, limitsReached);
        w.Flush();
        var bytes = ms.ToArray();
        (_last, _lastEntries, _lastStarts) = (bytes, bpf, starts);
        return bytes;
    }
}
