using System.Buffers.Binary;

namespace Bpfilter.Integration.Tests.Robustness;

/// <summary>
/// Turns well-formed requests into malformed ones, deterministically from a seeded Random:
/// truncations, wrong netlink and attribute lengths, bit flips, changed types and families,
/// mis-nesting, very deep nesting, oversized attributes, random bytes and spliced requests.
/// </summary>
sealed class Mutator(Random rng)
{
    public delegate byte[] Mutation(byte[] request, IReadOnlyList<byte[]> others);

    public static readonly string[] Names =
    [
        "truncate", "nlmsg-len", "bitflip", "random-bytes", "attr-len", "attr-type", "toggle-nested",
        "deep-nesting", "oversized-attr", "garbage", "splice", "msg-type", "family", "drop-batch-end",
        "duplicate-message", "zero-tail",
    ];

    public (string Name, byte[] Bytes) Mutate(byte[] request, IReadOnlyList<byte[]> others)
    {
        int k = rng.Next(Names.Length);
        byte[] r = Names[k] switch
        {
            "truncate" => request[..rng.Next(request.Length)],
            "nlmsg-len" => NlmsgLen(request),
            "bitflip" => BitFlip(request),
            "random-bytes" => RandomBytes(request),
            "attr-len" => AttrLen(request),
            "attr-type" => AttrType(request),
            "toggle-nested" => ToggleNested(request),
            "deep-nesting" => DeepNesting(request),
            "oversized-attr" => Oversized(request),
            "garbage" => Garbage(),
            "splice" => Splice(request, others[rng.Next(others.Count)]),
            "msg-type" => MsgType(request),
            "family" => Family(request),
            "drop-batch-end" => DropLastMessage(request),
            "duplicate-message" => DuplicateMessage(request),
            "zero-tail" => ZeroTail(request),
            _ => throw new InvalidOperationException(),
        };
        return (Names[k], r);
    }

    /// <summary>Offsets of the netlink messages of a request, as far as their lengths allow walking.</summary>
    static List<int> Messages(byte[] r)
    {
        var list = new List<int>();
        int off = 0;
        while (off + 16 <= r.Length)
        {
            list.Add(off);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(off));
            if (len < 16) break;
            off += (int)((len + 3) & ~3u);
        }
        return list;
    }

    /// <summary>Offsets of every attribute header, nested ones included (messages carry a 4-byte nfgenmsg).</summary>
    static List<int> Attributes(byte[] r)
    {
        var list = new List<int>();
        foreach (var m in Messages(r))
        {
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(m));
            int end = (int)Math.Min(r.Length, m + (long)len);
            Walk(r, m + 20, end, list, 0);
        }
        return list;
    }

    static void Walk(byte[] r, int off, int end, List<int> list, int depth)
    {
        while (off + 4 <= end)
        {
            ushort len = BinaryPrimitives.ReadUInt16LittleEndian(r.AsSpan(off));
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(r.AsSpan(off + 2));
            if (len < 4 || off + len > end) return;
            list.Add(off);
            if ((type & 0x8000) != 0 && depth < 32) Walk(r, off + 4, off + len, list, depth + 1);
            off += (len + 3) & ~3;
        }
    }

    byte[] NlmsgLen(byte[] r)
    {
        var c = (byte[])r.Clone();
        var ms = Messages(c);
        if (ms.Count == 0) return c;
        int m = ms[rng.Next(ms.Count)];
        uint cur = BinaryPrimitives.ReadUInt32LittleEndian(c.AsSpan(m));
        uint[] choices = [0, (uint)rng.Next(1, 16), cur + 1, cur - 1, cur + 4, (uint)c.Length * 2, uint.MaxValue, 0x7fffffff, 20];
        BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(m), choices[rng.Next(choices.Length)]);
        return c;
    }

    byte[] BitFlip(byte[] r)
    {
        var c = (byte[])r.Clone();
        if (c.Length == 0) return c;
        int n = rng.Next(1, 9);
        for (int i = 0; i < n; i++) c[rng.Next(c.Length)] ^= (byte)(1 << rng.Next(8));
        return c;
    }

    byte[] RandomBytes(byte[] r)
    {
        var c = (byte[])r.Clone();
        if (c.Length == 0) return c;
        int start = rng.Next(c.Length);
        int n = Math.Min(c.Length - start, rng.Next(1, 17));
        rng.NextBytes(c.AsSpan(start, n));
        return c;
    }

    byte[] AttrLen(byte[] r)
    {
        var c = (byte[])r.Clone();
        var attrs = Attributes(c);
        if (attrs.Count == 0) return NlmsgLen(r);
        int a = attrs[rng.Next(attrs.Count)];
        ushort cur = BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(a));
        ushort[] choices = [0, 1, 2, 3, (ushort)(cur + 1), (ushort)(cur - 1), (ushort)(cur + 4), ushort.MaxValue, (ushort)(cur + 64)];
        BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(a), choices[rng.Next(choices.Length)]);
        return c;
    }

    byte[] AttrType(byte[] r)
    {
        var c = (byte[])r.Clone();
        var attrs = Attributes(c);
        if (attrs.Count == 0) return BitFlip(r);
        int a = attrs[rng.Next(attrs.Count)];
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(c.AsSpan(a + 2));
        ushort[] choices = [0, (ushort)((type & 0xc000) | rng.Next(1, 40)), (ushort)((type & 0xc000) | 0x3fff), (ushort)(type ^ 0x4000)];
        BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(a + 2), choices[rng.Next(choices.Length)]);
        return c;
    }

    byte[] ToggleNested(byte[] r)
    {
        var c = (byte[])r.Clone();
        var attrs = Attributes(c);
        if (attrs.Count == 0) return BitFlip(r);
        int a = attrs[rng.Next(attrs.Count)];
        c[a + 3] ^= 0x80;
        return c;
    }

    /// <summary>Replaces one attribute's payload with a chain of nests hundreds deep.</summary>
    byte[] DeepNesting(byte[] r)
    {
        var attrs = Attributes(r);
        if (attrs.Count == 0) return Garbage();
        int a = attrs[rng.Next(attrs.Count)];
        int depth = rng.Next(17, 600);
        int inner = 8; // innermost: a u32 attribute
        var nest = new byte[depth * 4 + inner];
        for (int d = 0; d < depth; d++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(nest.AsSpan(d * 4), (ushort)(nest.Length - d * 4));
            BinaryPrimitives.WriteUInt16LittleEndian(nest.AsSpan(d * 4 + 2), (ushort)(0x8000 | rng.Next(1, 5)));
        }
        BinaryPrimitives.WriteUInt16LittleEndian(nest.AsSpan(depth * 4), 8);
        BinaryPrimitives.WriteUInt16LittleEndian(nest.AsSpan(depth * 4 + 2), 1);
        return ReplaceAttribute(r, a, nest);
    }

    /// <summary>An attribute far larger than any nf_tables field (up to 60 KiB), e.g. a huge name or data value.</summary>
    byte[] Oversized(byte[] r)
    {
        var attrs = Attributes(r);
        if (attrs.Count == 0) return Garbage();
        int a = attrs[rng.Next(attrs.Count)];
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(r.AsSpan(a + 2));
        int size = rng.Next(2) == 0 ? rng.Next(256, 5000) : rng.Next(5000, 60000);
        var attr = new byte[Math.Min(4 + size, 65532)];
        BinaryPrimitives.WriteUInt16LittleEndian(attr, (ushort)attr.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(attr.AsSpan(2), (ushort)(type & 0x7fff));
        if (rng.Next(2) == 0) attr.AsSpan(4).Fill((byte)'a'); else rng.NextBytes(attr.AsSpan(4));
        return ReplaceAttribute(r, a, attr);
    }

    /// <summary>Swaps the attribute at <paramref name="a"/> for <paramref name="replacement"/>, fixing every enclosing length.</summary>
    static byte[] ReplaceAttribute(byte[] r, int a, byte[] replacement)
    {
        int oldLen = (BinaryPrimitives.ReadUInt16LittleEndian(r.AsSpan(a)) + 3) & ~3;
        int newLen = (replacement.Length + 3) & ~3;
        int delta = newLen - oldLen;
        var c = new byte[r.Length + delta];
        r.AsSpan(0, a).CopyTo(c);
        replacement.CopyTo(c.AsSpan(a));
        r.AsSpan(a + oldLen).CopyTo(c.AsSpan(a + newLen));
        // Enclosing nests and the message start before a and end after it: grow them by delta.
        foreach (var m in Messages(r))
        {
            uint ml = BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(m));
            if (m < a && a < m + ml) BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(m), (uint)(ml + delta));
        }
        foreach (var n in Attributes(r))
        {
            int nl = BinaryPrimitives.ReadUInt16LittleEndian(r.AsSpan(n));
            if (n < a && a < n + nl)
            {
                int grown = nl + delta;
                BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(n), (ushort)Math.Clamp(grown, 0, 65535));
            }
        }
        return c;
    }

    byte[] Garbage()
    {
        var g = new byte[rng.Next(0, 400)];
        rng.NextBytes(g);
        if (g.Length >= 16 && rng.Next(2) == 0)
        {
            // A plausible header so the garbage reaches the nf_tables decoders.
            BinaryPrimitives.WriteUInt32LittleEndian(g, (uint)g.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(g.AsSpan(4), (ushort)(10 << 8 | rng.Next(0, 26)));
            BinaryPrimitives.WriteUInt16LittleEndian(g.AsSpan(6), (ushort)(1 | (rng.Next(2) == 0 ? 4 : 0x300)));
        }
        return g;
    }

    byte[] Splice(byte[] a, byte[] b)
    {
        int i = rng.Next(a.Length + 1), j = rng.Next(b.Length + 1);
        return [.. a.AsSpan(0, i), .. b.AsSpan(j)];
    }

    byte[] MsgType(byte[] r)
    {
        var c = (byte[])r.Clone();
        var ms = Messages(c);
        if (ms.Count == 0) return c;
        int m = ms[rng.Next(ms.Count)];
        ushort[] choices = [0, 1, 2, 3, 0x0f, 0x10, 0x11, 0x12, (ushort)(10 << 8 | rng.Next(0, 40)), (ushort)(rng.Next(1, 20) << 8 | rng.Next(0, 10)), 0xffff];
        BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(m + 4), choices[rng.Next(choices.Length)]);
        return c;
    }

    byte[] Family(byte[] r)
    {
        var c = (byte[])r.Clone();
        var ms = Messages(c).Where(m => m + 20 <= c.Length).ToList();
        if (ms.Count == 0) return c;
        int m = ms[rng.Next(ms.Count)];
        byte[] choices = [0, 1, 2, 3, 5, 7, 10, 12, 255, (byte)rng.Next(256)];
        c[m + 16] = choices[rng.Next(choices.Length)];
        if (rng.Next(3) == 0) c[m + 17] = (byte)rng.Next(1, 256); // nfgenmsg.version
        return c;
    }

    byte[] DropLastMessage(byte[] r)
    {
        var ms = Messages(r);
        if (ms.Count < 2) return r[..^Math.Min(r.Length, 4)];
        return r[..ms[^1]];
    }

    byte[] DuplicateMessage(byte[] r)
    {
        var ms = Messages(r);
        if (ms.Count == 0) return r;
        int i = rng.Next(ms.Count);
        int start = ms[i];
        int end = i + 1 < ms.Count ? ms[i + 1] : r.Length;
        return [.. r.AsSpan(0, end), .. r.AsSpan(start, end - start), .. r.AsSpan(end)];
    }

    byte[] ZeroTail(byte[] r)
    {
        var c = (byte[])r.Clone();
        if (c.Length == 0) return c;
        int from = rng.Next(c.Length);
        c.AsSpan(from).Clear();
        return c;
    }
}
