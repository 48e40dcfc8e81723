using System.Buffers.Binary;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// Turns the expression attributes nft sent into the layout the kernel dumps: each expression's
/// attributes in the order of its kernel dump function, transaction ids dropped, anonymous set names
/// resolved, stateful values (counter totals, limit burst defaults) filled in.
/// </summary>
internal static class ExprCanonicalizer
{
    // Per expression, the kernel's dump order where it is not simply ascending by attribute type.
    static readonly Dictionary<string, ushort[]> Order = new(StringComparer.Ordinal)
    {
        ["meta"] = [2, 1, 3],                   // KEY, DREG | SREG
        ["bitwise"] = [1, 2, 3, 6, 4, 5, 7],    // SREG, DREG, LEN, OP, MASK, XOR, DATA
        ["payload"] = [5, 1, 2, 3, 4, 6, 7, 8], // SREG (set) first, then DREG, BASE, OFFSET, LEN, CSUM_*
        ["lookup"] = [1, 2, 3, 5],              // SET, SREG, DREG, FLAGS (no SET_ID)
        ["dynset"] = [4, 5, 3, 1, 6, 7, 10, 9], // SREG_KEY, SREG_DATA, OP, SET_NAME, TIMEOUT, EXPR(S), FLAGS
        ["objref"] = [2, 1, 3, 4],              // IMM_NAME, IMM_TYPE, SET_SREG, SET_NAME
        ["counter"] = [1, 2],
        ["rt"] = [2, 1],                        // KEY, DREG
        ["osf"] = [2, 3, 1],                    // TTL, FLAGS, DREG
        ["ct"] = [1, 4, 2, 3],                  // DREG | SREG, KEY, DIRECTION
        ["quota"] = [1, 4, 2],                  // BYTES, CONSUMED, FLAGS
        ["limit"] = [1, 2, 3, 4, 5],
    };

    /// <summary>Writes the NFTA_EXPR_DATA content of <paramref name="e"/> for a dump, with live counter values.</summary>
    public static void WriteData(NetlinkWriter b, ExprRecord e, CounterValue? live)
    {
        if (e.Counter is { } cell && (e.Name == "counter" || e.Name == "quota"))
        {
            ulong packets = cell.Packets + (live?.Packets ?? 0);
            ulong bytes = cell.Bytes + (live?.Bytes ?? 0);
            if (e.Name == "counter")
            {
                b.PutU64Be(CounterAttr.Bytes, bytes);
                b.PutU64Be(CounterAttr.Packets, packets);
                return;
            }
            // quota: BYTES, CONSUMED, FLAGS from the stored layout, consumed from the cell
            var l = AttrList.Parse(e.Data, 0);
            b.PutU64Be(1, l.U64Be(1) ?? 0);
            b.PutU64Be(4, bytes);
            b.PutU32Be(2, l.U32Be(2) ?? 0);
            return;
        }
        b.WriteRaw(e.Data);
    }

    /// <summary>Reorders and completes the attributes of one expression (payload of NFTA_EXPR_DATA).</summary>
    public static byte[] Canonical(string name, AttrList data, Func<ushort, byte[]?>? rewrite = null)
    {
        var b = new NetlinkWriter(128);
        var present = new SortedDictionary<ushort, byte[]>();
        foreach (var (t, p, _) in data.Items) present[t] = rewrite?.Invoke(t) ?? p;
        if (rewrite != null)
            foreach (ushort t in Order.GetValueOrDefault(name) ?? [])
                if (!present.ContainsKey(t) && rewrite(t) is { } extra) present[t] = extra;

        switch (name)
        {
            case "lookup":
                present.Remove(4); // SET_ID
                present.TryAdd((ushort)5, BE32(0));
                break;
            case "dynset":
                present.Remove(2); // SET_ID
                present.TryAdd((ushort)6, BE64(0));
                present.TryAdd((ushort)9, BE32(0));
                if (present.TryGetValue(7, out var one)) present[7] = CanonicalNested(one);
                if (present.TryGetValue(10, out var many)) present[10] = CanonicalList(many);
                break;
            case "objref":
                present.Remove(5);
                foreach (ushort t in new ushort[] { 2, 4 })
                    if (present.TryGetValue(t, out var str)) present[t] = NulTerminated(str);
                break;
            case "bitwise":
                present.TryAdd((ushort)6, BE32(0)); // NFTA_BITWISE_OP defaults to bool
                break;
            case "payload":
                if (present.ContainsKey(5))
                {
                    present.TryAdd((ushort)6, BE32(0));
                    present.TryAdd((ushort)7, BE32(0));
                    present.TryAdd((ushort)8, BE32(0));
                }
                break;
            case "osf":
                present.TryAdd((ushort)3, BE32(0));
                break;
            case "hash":
                // NFTA_HASH_OFFSET is only dumped when set
                if (present.TryGetValue(6, out var off) && off.Length == 4 && BinaryPrimitives.ReadUInt32BigEndian(off) == 0)
                    present.Remove(6);
                break;
            case "socket":
                // NFTA_SOCKET_LEVEL only belongs to the cgroupv2 key
                if (!(present.TryGetValue(1, out var sk) && sk.Length == 4 && BinaryPrimitives.ReadUInt32BigEndian(sk) == 3))
                    present.Remove(3);
                break;
            case "reject":
                // the ICMP code is only dumped for the unreachable kinds (NFT_REJECT_ICMP_UNREACH, ICMPX)
                if (present.TryGetValue(1, out var rt) && rt.Length == 4 && BinaryPrimitives.ReadUInt32BigEndian(rt) == 1)
                    present.Remove(2);
                break;
            case "limit":
                present.TryAdd((ushort)3, BE32(0));
                present.TryAdd((ushort)5, BE32(0));
                // nft_limit_init: a packet limit without burst gets the default burst of 5
                if ((present.TryGetValue(4, out var ty) && ty.Length == 4 ? BinaryPrimitives.ReadUInt32BigEndian(ty) : 0) == 0
                    && present[3] is { Length: 4 } burst && BinaryPrimitives.ReadUInt32BigEndian(burst) == 0)
                    present[3] = BE32(5);
                break;
            case "quota":
                present.TryAdd((ushort)2, BE32(0));
                present.TryAdd((ushort)4, BE64(0)); // CONSUMED
                break;
        }

        var order = Order.GetValueOrDefault(name);
        if (order != null)
            foreach (ushort t in order)
                if (present.Remove(t, out var p)) b.PutRaw(t, p);
        foreach (var (t, p) in present) b.PutRaw(t, p);
        return b.ToArray();
    }

    static byte[] NulTerminated(byte[] s)
    {
        int nul = Array.IndexOf(s, (byte)0);
        if (nul >= 0) return s[..(nul + 1)];
        var r = new byte[s.Length + 1];
        s.CopyTo(r, 0);
        return r;
    }

    /// <summary>The content of an expression nest (NFTA_EXPR_NAME, NFTA_EXPR_DATA) in the kernel's layout.</summary>
    public static byte[] CanonicalNested(byte[] exprNest)
    {
        var l = AttrList.Parse(exprNest, 0);
        string name = l.Str(1) ?? "";
        var data = l.Get(2) is { } d ? AttrList.Parse(d, 0) : new AttrList();
        var b = new NetlinkWriter(64);
        b.PutString(1, name);
        var n = b.BeginNestedRaw(2);
        if (name == "counter")
        {
            // stateful templates dump their (zero) state
            b.PutU64Be(CounterAttr.Bytes, data.U64Be(CounterAttr.Bytes) ?? 0);
            b.PutU64Be(CounterAttr.Packets, data.U64Be(CounterAttr.Packets) ?? 0);
        }
        else b.WriteRaw(Canonical(name, data));
        b.EndNested(n);
        return b.ToArray();
    }

    /// <summary>A list of expression nests (NFTA_LIST_ELEM ...) in the kernel's layout.</summary>
    public static byte[] CanonicalList(byte[] list)
    {
        var b = new NetlinkWriter(128);
        foreach (var (t, p, _) in AttrList.Parse(list, 0).Items)
            b.PutRaw(t, CanonicalNested(p));
        return b.ToArray();
    }

    /// <summary>Nests with the NLA_F_NESTED flag nft may set, rewritten without it, recursively.</summary>
    public static byte[] StripNestedFlags(byte[] attrs, int depth = 0)
    {
        var b = new NetlinkWriter(attrs.Length + 8);
        foreach (var (t, p, _) in AttrList.Parse(attrs, 0).Items)
            b.PutRaw(t, depth < 8 && LooksNested(p) ? StripNestedFlags(p, depth + 1) : p);
        return b.ToArray();
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

    public static byte[] BE32(uint v)
    {
        var a = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(a, v);
        return a;
    }

    public static byte[] BE64(ulong v)
    {
        var a = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(a, v);
        return a;
    }

    /// <summary>NFTA_DATA_VERDICT nest content for a verdict (code, chain).</summary>
    public static byte[] VerdictNest(int code, string? chain)
    {
        var b = new NetlinkWriter(64);
        var v = b.BeginNestedRaw(DataAttr.Verdict);
        b.PutU32Be(DataAttr.VerdictCode, (uint)code);
        if (chain != null) b.PutString(DataAttr.VerdictChain, chain);
        b.EndNested(v);
        return b.ToArray();
    }
}
