using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// What the kernel keeps of an expression nft sent, as its dump shows it: transaction ids dropped,
/// verdicts reduced to code and chain, the defaults its init functions set filled in, attributes it
/// does not dump removed. Typed records in, typed records out (written with WireFormat.Kernel).
/// Set names are resolved by the caller, which knows the batch.
/// </summary>
internal static class KernelForm
{
    public static Expression Of(Expression e) => e switch
    {
        ImmediateExpr { Data: VerdictData v } i => i with { Data = new VerdictData(new Verdict(v.Verdict.Code, v.Verdict.Chain)) },
        LookupExpr l => l with { SetId = null, Flags = l.Flags ?? 0 },
        DynsetExpr d => d with
        {
            SetId = null,
            Timeout = d.Timeout ?? 0,
            Flags = d.Flags ?? 0,
            Expr = d.Expr is { } x ? Template(x) : null,
            Expressions = d.Expressions?.Select(Template).ToList(),
        },
        ObjRefExpr o => o with { SetId = null },
        BitwiseExpr b => b with { Op = b.Op ?? BitwiseExpr.OpMaskXor },
        PayloadExpr { SReg: not null } p => p with { CsumType = p.CsumType ?? 0, CsumOffset = p.CsumOffset ?? 0, CsumFlags = p.CsumFlags ?? 0 },
        OsfExpr o => o with { Flags = o.Flags ?? 0 },
        // NFTA_HASH_OFFSET is only dumped when set
        HashExpr { Offset: 0 } h => h with { Offset = null },
        // NFTA_SOCKET_LEVEL only belongs to the cgroupv2 key
        SocketExpr { Key: not 3 } s => s with { Level = null },
        // the ICMP code is only dumped for the unreachable kinds (NFT_REJECT_ICMP_UNREACH, ICMPX)
        RejectExpr { Type: 1 } r => r with { IcmpCode = null },
        // nft_limit_init: a packet limit without burst gets the default burst of 5
        LimitExpr l => l with
        {
            Burst = (l.Type ?? LimitExpr.TypePackets) == LimitExpr.TypePackets && (l.Burst ?? 0) == 0 ? 5 : l.Burst ?? 0,
            Flags = l.Flags ?? 0,
        },
        QuotaExpr q => q with { Flags = q.Flags ?? 0, Consumed = q.Consumed ?? 0 },
        _ => e,
    };

    /// <summary>An expression used as a template (set and element statements, dynset): stateful ones dump their zero state.</summary>
    public static Expression Template(Expression e) =>
        e is CounterExpr c ? new CounterExpr(c.Bytes ?? 0, c.Packets ?? 0) : Of(e);

    /// <summary>
    /// Object state of a kind Nft.Bytecode does not type (ct helper, ct timeout, ct expectation,
    /// secmark, tunnel): nothing typed to transform, so its attributes are laid out as the kernel
    /// dumps such state: ascending by type, the last of duplicates, nests without NLA_F_NESTED.
    /// </summary>
    public static OpaqueExpr Opaque(string kind, ReadOnlySpan<byte> data)
    {
        var present = new SortedDictionary<ushort, byte[]>();
        var r = new AttributeReader(data, 0);
        while (r.TryRead(out var a)) present[a.Type] = a.Payload.ToArray();
        var w = new NetlinkWriter(data.Length + 8);
        foreach (var (t, p) in present) w.PutRaw(t, LooksNested(p) ? WithoutNestFlags(p, 1) : p);
        return new OpaqueExpr(kind, w.ToArray());
    }

    static byte[] WithoutNestFlags(byte[] attrs, int depth)
    {
        var w = new NetlinkWriter(attrs.Length + 8);
        var r = new AttributeReader(attrs, 0);
        while (r.TryRead(out var a))
        {
            var p = a.Payload.ToArray();
            w.PutRaw(a.Type, depth < 8 && LooksNested(p) ? WithoutNestFlags(p, depth + 1) : p);
        }
        return w.ToArray();
    }

    static bool LooksNested(byte[] p)
    {
        if (p.Length < 4) return false;
        int pos = 0;
        while (pos + 4 <= p.Length)
        {
            int len = p[pos] | p[pos + 1] << 8;
            if (len < 4 || pos + len > p.Length) return false;
            pos += (len + 3) & ~3;
        }
        return pos == p.Length || pos == ((p.Length + 3) & ~3);
    }
}
