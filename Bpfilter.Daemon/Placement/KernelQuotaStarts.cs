using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// The `used` each quota (a rule's or a named one) the kernel took over from BPF counts from: BPF's slot start point,
/// which is the `used` it was created with unless `nft reset quotas` zeroed it. The kernel's placement reads what a
/// quota consumed since it was placed from the `used` of the tables it is given as listed (<see cref="Listed"/>): sent
/// with the created `used` there, a quota reset in BPF would read nothing consumed in the kernel up to that `used`.
/// Kept in the state file: a restarted daemon adopts the kernel's tables with the same start points.
/// </summary>
internal sealed class KernelQuotaStarts
{
    readonly Dictionary<CounterRef, ulong> _starts = [];

    /// <summary>Every start point, for the state file.</summary>
    public IReadOnlyDictionary<CounterRef, ulong> All => _starts;

    /// <summary>Records the start points of quotas the kernel takes over (or restores those saved by an earlier run).</summary>
    public void Set(IEnumerable<QuotaStart> starts)
    {
        foreach (var s in starts) _starts[s.At] = s.Used;
    }

    /// <summary>Forgets the quotas the kernel no longer consumes.</summary>
    public void Retain(Func<CounterRef, bool> inKernel)
    {
        foreach (var c in _starts.Keys.Where(c => !inKernel(c)).ToList()) _starts.Remove(c);
    }

    /// <summary><paramref name="tables"/> as the kernel's placement should list them: each quota's `used` its start point.</summary>
    public IReadOnlyList<SourceTable> Listed(IReadOnlyList<SourceTable> tables) => _starts.Count == 0
        ? tables
        : CounterCarry.Rewritten(tables, (at, e) => e is QuotaExpr q && _starts.TryGetValue(at, out var used) ? q with { Consumed = used } : null);
}
