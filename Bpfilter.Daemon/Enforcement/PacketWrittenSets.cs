using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Ir;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Lifter;
using NftSetElement = Nft.Bytecode.Objects.SetElement;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Reads back the elements of a set a BPF program writes from the packet path (nft_dynset), as nf_tables
/// dumps them: the nft key (the lift's <see cref="SetEncoder.RegisterKey"/>), the time left until expiry in
/// milliseconds as nf_jiffies64_to_msecs(expiration - jiffies64) computes it, the element's own timeout, a map's data and the
/// state of the statements the packet path gave it (`counter packets N bytes M`, `quota ... used ...`).
/// Every program holding such a set references one pair of copies (Backend SetCopies), so any one of them lists every element.
/// </summary>
internal static class PacketWrittenSets
{
    /// <summary>The live elements, or null when no running program writes the set.</summary>
    public static IReadOnlyList<NftSetElement>? Read(IEnumerable<LoadedProgram> programs, SetEncoder encoder)
    {
        foreach (var p in programs)
        {
            if (p.LiveElements(encoder.IrName) is not { } live) continue;
            var tick = (ulong)(KernelClock.TickMs ?? 1);
            var now = live.Any(e => e.Expires != null) ? KernelClock.Jiffies64() : 0;
            var elements = new List<NftSetElement>(live.Count);
            foreach (var e in live)
            {
                var key = encoder.RegisterKey(e.Key)
                    ?? throw new InvalidOperationException($"set {encoder.IrName}: map key {Convert.ToHexString(e.Key)} has no nft key");
                ulong? left = null;
                if (e.Expires is ulong x)
                {
                    // expired since the map was read: the kernel's walk would skip it too
                    if ((long)(x - now) <= 0) continue;
                    left = (x - now) * tick;
                }
                var element = new NftSetElement
                {
                    Key = new ValueData(key), Data = e.Data is { } d ? new ValueData(d) : null, Timeout = e.Timeout * tick, Expiration = left,
                };
                elements.Add(e.State.Count switch
                {
                    0 => element,
                    1 => element with { Expr = Expression(e.State[0]) },
                    _ => element with { Expressions = e.State.Select(Expression).ToList() },
                });
            }
            return elements;
        }
        return null;
    }

    /// <summary>A packet-path element's statement as nf_tables dumps it: a counter's packets and bytes, a quota with its `used`.</summary>
    static Expression Expression(PacketElementState s) => s.Statement switch
    {
        CounterStatement => new CounterExpr(s.Bytes, s.Packets),
        QuotaStatement q => new QuotaExpr(q.Bytes, q.Over ? QuotaExpr.NFT_QUOTA_F_INV : 0).Dumped(s.Bytes),
        // nft_limit_dump: the rate, unit, burst (a packet limit's default 5 as stored), type and flags, no bucket state
        LimitStatement l => new LimitExpr(l.Rate, (ulong)l.Per.TotalSeconds, l.Burst,
            l.Type == LimitType.Bytes ? LimitExpr.TypeBytes : LimitExpr.TypePackets, l.Over ? LimitExpr.NFT_LIMIT_F_INV : 0),
        var x => throw new InvalidOperationException($"statement '{x}' of a packet-path element has no listing"),
    };
}
