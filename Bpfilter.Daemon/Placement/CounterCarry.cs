using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// A counter BPF counts from now on, with what the kernel counted for it until this commit (<see cref="Kernel"/>),
/// added to what BPF counted (<see cref="KeepBpf"/>: BPF counted it before too) or in place of it (a slot BPF did
/// not count before may hold what it counted before an earlier move). <see cref="At"/>: the counter, when the kernel
/// counts it no more. <see cref="Early"/>: what BPF's programs installed beside the kernel's copy before the kernel commit
/// (a chain taken back at a new attach point, <see cref="Bpfilter.Backend.Enforcement.Enforcer.InstallEarly"/>) had counted
/// when <see cref="Kernel"/> was read, zero when the kernel's copy stopped counting at their install: what they counted
/// since is added to the kernel's count (<see cref="Overlapped"/>; the rule is EnforcingBackend.Early.cs's).
/// </summary>
internal readonly record struct CounterSeed(ulong Slot, CounterValue Kernel, bool KeepBpf, CounterRef? At = null, CounterValue? Early = null)
{
    /// <summary>
    /// The counter ledger entry (what it carries, its zero) that lists the kernel's count and what the early programs
    /// counted since <see cref="Early"/>, from the entry it had (<paramref name="was"/>, kept when <see cref="KeepBpf"/>):
    /// an offset on what the running programs count, which is not read here, so a packet they count while it is applied
    /// is not lost (reading their count and then setting the listing to a value lost what came between, once 36 packets).
    /// </summary>
    public ((ulong Packets, ulong Bytes) Carried, (ulong Packets, ulong Bytes) Zero) Overlapped(
        ((ulong Packets, ulong Bytes) Carried, (ulong Packets, ulong Bytes) Zero) was)
    {
        var (e, keep) = (Early ?? default, KeepBpf ? was : default);
        static (ulong Over, ulong Under) Net(ulong plus, ulong minus) => plus >= minus ? (plus - minus, 0) : (0, minus - plus);
        var (cp, zp) = Net(keep.Carried.Packets + Kernel.Packets, keep.Zero.Packets + e.Packets);
        var (cb, zb) = Net(keep.Carried.Bytes + Kernel.Bytes, keep.Zero.Bytes + e.Bytes);
        return ((cp, cb), (zp, zb));
    }
}

/// <summary>A counter the kernel takes over from BPF, sent with the count BPF's slot <see cref="Slot"/> had then.</summary>
internal readonly record struct CounterSent(CounterRef At, ulong Slot);

/// <summary>A quota (a rule's or a named one) the kernel consumes from now on, with the `used` its kernel copy counts from (<see cref="KernelQuotaStarts"/>).</summary>
internal readonly record struct QuotaStart(CounterRef At, ulong Used);

/// <summary>
/// A quota (a rule's or a named one) BPF consumes from now on, with the bytes the kernel consumed beyond its start point until
/// this commit and that start point (<see cref="KernelQuotaStarts"/>; null: the created `used`, as BPF's slot has it).
/// </summary>
internal readonly record struct QuotaSeed(ulong Slot, ulong Used, ulong? Start = null, CounterRef? At = null);

/// <summary>
/// Counts that follow a counter when a commit moves the chain (or the named counter) that holds it between BPF and
/// the kernel's nf_tables. In the kernel's own nf_tables nothing moves: an unchanged rule or named counter keeps its
/// count (and a quota its `used`), so bpfilterd's listing must too. To the kernel: the rule or object is sent with the count BPF listed
/// (NFTA_COUNTER_PACKETS/BYTES on NEWRULE and NEWOBJ, as `counter packets 5 bytes 500` in a file). Back to BPF: the
/// ledger is given what the kernel listed, read before the kernel commit takes the chain away.
/// A counter both sides count (a regular chain reached from base chains on both) is left as it is while both go on
/// counting; when the kernel alone goes on, its rule is not made anew (its handle would change): BPF's part is listed besides.
/// </summary>
internal static class CounterCarry
{
    /// <summary>Where a counter was counted before the commit and will be after it.</summary>
    public delegate (ulong? Slot, bool Kernel) Sides(CounterRef c);

    /// <summary>
    /// The kernel's tables with each counter the kernel takes over from BPF alone preset to BPF's count
    /// (<paramref name="bpfCount"/>); rules and objects the kernel already holds (<paramref name="held"/>) keep
    /// counting there (the placement leaves them, or carries the kernel's counts when it recreates a table).
    /// </summary>
    /// <param name="quotaBefore">where a quota (a rule's or a named one) was consumed before the commit (its BPF quota slot)</param>
    /// <param name="quotaAfter">where it is consumed after the commit</param>
    /// <param name="bpfQuota">a BPF quota slot's start point (the `used` it was created with, 0 after `nft reset quotas`) and what it consumed since</param>
    /// <param name="starts">gets, per quota the kernel takes over, the start point its kernel copy counts from</param>
    /// <param name="carried">gets BPF's part of each rule counter both sides counted that the kernel's rule alone counts now
    /// (a regular chain jumped to from base chains on both sides), which the listing adds (KernelCounterView.Carry)</param>
    /// <param name="sent">gets each counter sent with BPF's count, with its slot: BPF goes on counting until the kernel
    /// commit, and what it counts meanwhile is carried after it (<see cref="Remainder"/>)</param>
    public static IReadOnlyList<SourceTable> ToKernel(IReadOnlyList<SourceTable> tables, Func<CounterRef, bool> held, Sides before, Sides after,
        Func<ulong, CounterValue> bpfCount, Sides quotaBefore, Sides quotaAfter, Func<ulong, (ulong Base, ulong Used)> bpfQuota, ICollection<QuotaStart> starts,
        ICollection<(CounterRef At, CounterValue Bpf)> carried, ICollection<CounterSent> sent)
    {
        CounterValue? Preset(CounterRef c)
        {
            if (held(c))
            {
                if (c.ObjectName == null && before(c) is { Slot: { } both, Kernel: true } && after(c) is { Slot: null, Kernel: true })
                    carried.Add((c, bpfCount(both)));
                return null;
            }
            var (slot, kernel) = before(c);
            if (slot is not { } s || kernel) return null;
            var now = after(c);
            if (!now.Kernel || now.Slot != null) return null;
            var count = bpfCount(s);
            sent.Add(new CounterSent(c, s));
            return count;
        }
        // a quota: BPF's quota slot is in no placement's counter sides; the kernel takes it over with its chain
        (ulong Base, ulong Used)? QuotaPreset(CounterRef c) =>
            !held(c) && quotaBefore(c).Slot is { } s && quotaAfter(c) is { Kernel: true, Slot: null } ? bpfQuota(s) : null;
        Expression? Filled(CounterRef at, Expression e)
        {
            if (e is CounterExpr && Preset(at) is { } v) return new CounterExpr(v.Bytes, v.Packets);
            if (e is not QuotaExpr q || QuotaPreset(at) is not { } bpf) return null;
            // the kernel copy counts from where BPF's slot did: after a reset that is 0, not the created `used`
            starts.Add(new QuotaStart(at, bpf.Base));
            // NFTA_QUOTA_CONSUMED: capped at the quota, as ElementCarry does: the kernel refuses more (EINVAL),
            // and lists a quota consumed past its bytes with `used` capped anyway
            return q with { Consumed = Math.Min(q.Bytes, bpf.Base + bpf.Used) };
        }
        return Rewritten(tables, Filled);
    }

    /// <summary>
    /// What BPF counted for each counter sent to the kernel with BPF's count (<paramref name="sent"/>) after that count was
    /// read and before the kernel applied the batch, which the kernel's new rule or object does not hold: BPF's total less
    /// the kernel's (each <see cref="CounterSent"/> with the kernel's total and BPF's, read at one moment). From the kernel commit until BPF's
    /// program is swapped out, a packet counted in the one is counted in the other too, so the difference holds still.
    /// </summary>
    public static IEnumerable<(CounterRef At, CounterValue Bpf)> Remainder(IEnumerable<(CounterSent Sent, CounterValue Kernel, CounterValue Bpf)> sent)
    {
        foreach (var ((at, _), kernel, now) in sent)
        {
            if (now.Packets > kernel.Packets || now.Bytes > kernel.Bytes)
                yield return (at, new CounterValue(now.Packets - Math.Min(now.Packets, kernel.Packets), now.Bytes - Math.Min(now.Bytes, kernel.Bytes)));
        }
    }

    /// <summary><paramref name="tables"/> with each rule expression and named object state <paramref name="filled"/> gives anew replaced.</summary>
    public static IReadOnlyList<SourceTable> Rewritten(IReadOnlyList<SourceTable> tables, Func<CounterRef, Expression, Expression?> filled) =>
        tables.Select(t => t.WithExpressions(
            (c, r, i, e) => r.Handle is { } h ? filled(new CounterRef(t.Family, t.Name, c.Name, h, i, null), e) : null,
            o => o.Name is { } n && o.Data is { } d ? filled(Named(t, o), d) : null)).ToList();

    /// <summary>Each expression of rule <paramref name="r"/> with the reference its counter or quota is read and listed by.</summary>
    static IEnumerable<(CounterRef At, Expression Expr)> InRule(SourceTable t, string chain, Rule r)
    {
        if (r.Expressions is not { } exprs || r.Handle is not { } handle) yield break;
        for (int i = 0; i < exprs.Count; i++) yield return (new CounterRef(t.Family, t.Name, chain, handle, i, null), exprs[i]);
    }

    /// <summary>The reference of named object <paramref name="o"/>, by its type too (a counter and a quota may share a name).</summary>
    static CounterRef Named(SourceTable t, NftObject o) => CounterRef.Named(t.Family, t.Name, o.Name!, o.Type);

    /// <summary>Every rule expression and named object state (its NFTA_OBJ_DATA) of <paramref name="tables"/>, each with its reference.</summary>
    static IEnumerable<(CounterRef At, Expression Expr)> Stateful(IReadOnlyList<SourceTable> tables)
    {
        foreach (var t in tables)
        {
            foreach (var c in t.Chains)
                foreach (var r in c.Rules)
                    foreach (var x in InRule(t, c.Name, r)) yield return x;
            foreach (var o in t.Objects ?? [])
                if (o.Name != null && o.Data is { } d) yield return (Named(t, o), d);
        }
    }

    /// <summary>
    /// The counters of <paramref name="tables"/> (the whole proposed ruleset) that BPF counts after the commit and the
    /// kernel counted before it, with the kernel's count (<paramref name="kernelCount"/>, read before the kernel
    /// commit). Those the kernel goes on counting start from zero in BPF.
    /// </summary>
    public static IReadOnlyList<CounterSeed> ToBpf(IReadOnlyList<SourceTable> tables, Sides before, Sides after, Func<CounterRef, CounterValue?> kernelCount)
    {
        var seeds = new List<CounterSeed>();
        foreach (var (c, e) in Stateful(tables))
        {
            if (e is not CounterExpr) continue;
            var (oldSlot, oldKernel) = before(c);
            if (!oldKernel) continue;
            var (slot, kernel) = after(c);
            if (slot is not { } s || oldSlot != null && kernel) continue; // BPF and the kernel go on counting their parts
            seeds.Add(new CounterSeed(s, kernel ? default : kernelCount(c) ?? default, oldSlot != null, kernel ? null : c));
        }
        return seeds;
    }

    /// <summary>
    /// The quotas (a rule's or a named one) of <paramref name="tables"/> that BPF alone consumes after the commit and the
    /// kernel alone before it, with what the kernel consumed (<paramref name="kernelUsed"/>, read before the kernel commit)
    /// since the start point its kernel copy counted from (<paramref name="kernelStart"/>, the created `used` when null).
    /// </summary>
    public static IReadOnlyList<QuotaSeed> QuotasToBpf(IReadOnlyList<SourceTable> tables, Sides before, Sides after, Func<CounterRef, ulong?> kernelUsed,
        Func<CounterRef, ulong?> kernelStart)
    {
        var seeds = new List<QuotaSeed>();
        foreach (var (q, e) in Stateful(tables))
            if (e is QuotaExpr created && before(q) is { Slot: null, Kernel: true } && after(q) is { Slot: { } s, Kernel: false })
                // BPF's slot goes on from the same start point: after a reset the kernel consumed from 0, not from the created `used`
                seeds.Add(new QuotaSeed(s, kernelUsed(q) ?? 0, kernelStart(q) ?? created.Consumed ?? 0, q));
        return seeds;
    }
}
