using System.Buffers.Binary;
using Bpfilter.Daemon.NfTables.Model;
using Nft.Netlink;

namespace Bpfilter.Daemon.NfTables;

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
        ["quota"] = [1, 3, 2],                  // BYTES, CONSUMED, FLAGS
        ["limit"] = [1, 2, 3, 4, 5],
    };

    /// <summary>Writes the NFTA_EXPR_DATA content of <paramref name="e"/> for a dump, with live counter values.</summary>
    public static void WriteData(NlBuilder b, ExprRecord e, CounterValue? live)
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
            b.PutU64Be(3, bytes);
            b.PutU32Be(2, l.U32Be(2) ?? 0);
            return;
        }
        b.Raw(e.Data);
    }

    /// <summary>Reorders and completes the attributes of one expression (payload of NFTA_EXPR_DATA).</summary>
    public static byte[] Canonical(string name, AttrList data, Func<ushort, byte[]?>? rewrite = null)
    {
        var b = new NlBuilder(128);
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
                break;
            case "objref":
                present.Remove(5);
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
                present.TryAdd((ushort)3, BE64(0));
                break;
        }

        var order = Order.GetValueOrDefault(name);
        if (order != null)
            foreach (ushort t in order)
                if (present.Remove(t, out var p)) b.Put(t, p);
        foreach (var (t, p) in present) b.Put(t, p);
        return b.ToArray();
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
    public static byte[] VerdictData(int code, string? chain)
    {
        var b = new NlBuilder(64);
        int v = b.BeginNest(DataAttr.Verdict);
        b.PutU32Be(DataAttr.VerdictCode, (uint)code);
        if (chain != null) b.PutString(DataAttr.VerdictChain, chain);
        b.EndNest(v);
        return b.ToArray();
    }
}
