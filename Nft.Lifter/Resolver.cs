using System.Numerics;
using Bpfilter.Backend.Ir;
using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>Why a register value is being turned into an IR key.</summary>
internal enum Use
{
    /// <summary>cmp eq/neq: masks and prefixes can be kept as a masked equality.</summary>
    Equality,
    /// <summary>cmp lt/gt/lte/gte, range, interval sets: the conversion must keep the order.</summary>
    Ordered,
    /// <summary>exact set keys: the field itself, no mask.</summary>
    SetKey,
}

/// <summary>Turns register values into IR fields and constant converters (<see cref="Operand"/>).</summary>
internal static class Resolver
{
    public static Operand Resolve(RuleContext rule, HeaderContext ctx, RegValue v, int used, Use use, int index)
    {
        if (v.Unsupported is { } u) throw rule.Refuse(u.Index, u.Reason);
        int d = Math.Min(used, v.Len);
        return v.Source switch
        {
            MetaSource m => ResolveMeta(rule, v, m, d, use, index),
            PayloadSource p => ResolvePayload(rule, ctx, v, p, d, use, index),
            CtSource c => ResolveCt(rule, ctx, v, c, d, use, index),
            _ => throw rule.Refuse(v.Producer, "immediate data is only used by statements bpfilter-nft does not support"),
        };
    }

    static Operand ResolveMeta(RuleContext rule, RegValue v, MetaSource m, int d, Use use, int index)
    {
        if (m.IrKey is not { } key)
            throw rule.Refuse(v.Producer, $"meta {MetaNames.Of(m.Key)} is only supported as nft's own dependency before a link-layer match");
        var field = new MetaField(key);
        bool nameKey = key is MetaKey.IifName or MetaKey.OifName;
        if (d < v.Len)
        {
            // iifname "eth*": a cmp shorter than the name compares a prefix
            if (!nameKey || v.Mask != null || use != Use.Equality)
                throw rule.Refuse(index, $"compares only {d} of the {v.Len} bytes of meta {MetaNames.Of(m.Key)}");
            int shift = (v.Len - d) * 8;
            return new Operand(field, d, false, null, 0, shift, Operand.ToValue(Ones(d * 8) << shift, field.Bytes));
        }
        if (v.HostOrder && use == Use.Ordered)
            throw rule.Refuse(index, $"ordered comparison of host-order meta {MetaNames.Of(m.Key)} without byteorder is not supported");
        var mask = MaskOf(rule, v, d, v.HostOrder, index);
        if (mask is null) return new Operand(field, d, v.HostOrder, null, 0, 0, null);
        if (use != Use.Equality)
            throw rule.Refuse(index, $"a masked meta {MetaNames.Of(m.Key)} can only be compared for equality");
        return new Operand(field, d, v.HostOrder, mask, 0, 0, Operand.ToValue(mask.Value, field.Bytes));
    }

    static Operand ResolveCt(RuleContext rule, HeaderContext ctx, RegValue v, CtSource c, int d, Use use, int index)
    {
        var field = c.Field;
        var name = CtNames.Of(c.Key, c.Direction);
        if (CtNames.IsAddress(field.Key))
        {
            // the family-dependent saddr/daddr of an ip6 or inet table: nft_ct_get_eval copies 16 bytes for an IPv6
            // entry but only 4 for an IPv4 one, leaving the rest of the register as earlier expressions (or nothing)
            // left it, so a longer compare is exact only for an entry an earlier `ct l3proto ipv6` proved IPv6: there
            // it reads the entry's IPv6 address (the ip6 key breaks on an IPv4 entry, which the rule never reaches)
            if (d > field.Bytes && field.Key is CtReadKey.Src or CtReadKey.Dst && ctx.CtFamily == 10)
                field = new CtField(field.Key == CtReadKey.Src ? CtReadKey.SrcIp6 : CtReadKey.DstIp6, field.Dir);
            else if (d > field.Bytes)
                throw rule.Refuse(index, $"compares {d} bytes of ct {name}: bpfilter-nft reads only its first 4 " +
                    "(the kernel leaves the rest of the register unset for an IPv4 entry); use ct ip6 saddr/daddr, " +
                    "or match ct l3proto ipv6 first");
            if (d < field.Bytes)
            {
                // a prefix (`ct original ip daddr 10.0.0.0/8`): the compared bytes, with the mask if any, on the left of the field
                if (use != Use.Equality) throw rule.Refuse(index, $"compares only {d} of the {field.Bytes} bytes of ct {name}");
                int shift = (field.Bytes - d) * 8;
                var keep = MaskOf(rule, v, d, false, index);
                return new Operand(field, d, false, keep, 0, shift, Operand.ToValue((keep ?? Ones(d * 8)) << shift, field.Bytes));
            }
        }
        else if (d < v.Len) throw rule.Refuse(index, $"compares only {d} of the {v.Len} bytes of ct {name}");
        if (v.HostOrder && use == Use.Ordered && v.Len > 1)
            throw rule.Refuse(index, $"ordered comparison of host-order ct {name} without byteorder is not supported");
        var mask = MaskOf(rule, v, d, v.HostOrder, index);
        if (mask is null) return new Operand(field, d, v.HostOrder, null, 0, 0, null);
        if (use != Use.Equality) throw rule.Refuse(index, $"a masked ct {name} can only be compared for equality");
        return new Operand(field, d, v.HostOrder, mask, 0, 0, Operand.ToValue(mask.Value, field.Bytes));
    }

    static Operand ResolvePayload(RuleContext rule, HeaderContext ctx, RegValue v, PayloadSource p, int d, Use use, int index)
    {
        int off = (int)p.Offset * 8, len = d * 8;
        var (proto, b) = HeaderOf(rule, ctx, p, off, len, v.Producer);
        // the kernel reads a transport load the fast path runs even in a non-first fragment
        var fast = b == PayloadBase.Transport ? PayloadLoad.Fast((int)p.Offset, v.Len) : null;
        var f0 = new PayloadField(proto, b, off, len) { FastLoad = fast };
        var mask = MaskOf(rule, v, d, false, index);
        if (mask is null)
        {
            if (Catalog.IsNamed(f0) || use != Use.Equality) return new Operand(f0, d, false, null, 0, 0, null);
            return Contained(f0, d, null) ?? new Operand(f0, d, false, null, 0, 0, null);
        }
        var m = mask.Value;
        if (Contiguous(m, len, out int ones, out int trailing))
        {
            var g = new PayloadField(proto, b, off + (len - ones - trailing), ones) { FastLoad = fast };
            if (Catalog.IsNamed(g) || use != Use.Equality) return new Operand(g, d, false, m, trailing, 0, null);
        }
        else if (use != Use.Equality)
            throw rule.Refuse(index, "a non-contiguous bitwise mask can only be compared for equality");
        return Contained(f0, d, m) ?? new Operand(f0, d, false, m, 0, 0, Operand.ToValue(m, f0.Bytes));
    }

    /// <summary>The load as a part of the named field that contains it: (field &amp; mask) == value.</summary>
    static Operand? Contained(PayloadField f0, int d, BigInteger? mask)
    {
        if (f0.Protocol == HeaderProtocol.Raw) return null;
        var c = Catalog.Containing(f0.Protocol, f0.OffsetBits, f0.LengthBits) is { } named ? named with { FastLoad = f0.FastLoad } : null;
        if (c is null) return null;
        int shift = c.OffsetBits + c.LengthBits - (f0.OffsetBits + f0.LengthBits);
        var m = (mask ?? Ones(f0.LengthBits)) << shift;
        return new Operand(c, d, false, mask, 0, shift, Operand.ToValue(m, c.Bytes));
    }

    static (HeaderProtocol, PayloadBase) HeaderOf(RuleContext rule, HeaderContext ctx, PayloadSource p, int off, int len, int index)
    {
        switch (p.Base)
        {
            case PayloadExpr.BaseLinkLayer:
                if (!ctx.LinkLayer)
                    throw rule.Refuse(index, RuleLifter.LinkLayerOnly);
                if (off + len <= Catalog.HeaderBits(HeaderProtocol.Ether)) return (HeaderProtocol.Ether, PayloadBase.Link);
                if (ctx.Vlan && off >= 112 && off + len <= Catalog.HeaderBits(HeaderProtocol.Vlan)) return (HeaderProtocol.Vlan, PayloadBase.Link);
                return (HeaderProtocol.Raw, PayloadBase.Link);
            case PayloadExpr.BaseNetwork:
                // at a netdev hook the frame may be anything (ARP, VLAN-tagged): a raw network load without an
                // ip/ip6 dependency reads bytes the IR's network base does not describe
                if (ctx.L3 is null && ctx.AnyEtherType)
                    throw rule.Refuse(index, "a network header match without an ip or ip6 dependency is not supported in netdev chains");
                return (ctx.L3 ?? HeaderProtocol.Raw, PayloadBase.Network);
            case PayloadExpr.BaseTransport:
                return (ctx.L4 ?? HeaderProtocol.Raw, PayloadBase.Transport);
            default:
                throw rule.Refuse(index, $"payload base {(p.Base == PayloadExpr.BaseInner ? "inner" : p.Base.ToString())} is not supported");
        }
    }

    /// <summary>The mask of the first <paramref name="d"/> bytes as a big-endian number; null when absent or all ones.</summary>
    static BigInteger? MaskOf(RuleContext rule, RegValue v, int d, bool reverse, int index)
    {
        if (v.Mask is null) return null;
        var b = v.Mask.AsSpan(0, d).ToArray();
        if (reverse) Array.Reverse(b);
        var m = new BigInteger(b, isUnsigned: true, isBigEndian: true);
        if (m.IsZero) throw rule.Refuse(index, "compares a value masked to zero");
        return m == Ones(d * 8) ? null : m;
    }

    public static BigInteger Ones(int bits) => (BigInteger.One << bits) - 1;

    /// <summary>True when the mask is one run of ones; gives its length and the zeros to its right.</summary>
    static bool Contiguous(BigInteger m, int bits, out int ones, out int trailing)
    {
        trailing = 0;
        while (trailing < bits && (m >> trailing & 1) == 0) trailing++;
        var run = m >> trailing;
        ones = 0;
        while ((run & 1) == 1) { ones++; run >>= 1; }
        return run.IsZero && ones > 0;
    }
}
