using System.Numerics;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Data;
using IrVerdict = Bpfilter.Backend.Ir.Verdict;
using NftSetElement = Nft.Bytecode.Objects.SetElement;
using NftVerdict = Nft.Bytecode.Data.Verdict;

namespace Nft.Lifter;

/// <summary>
/// Converts a set's elements into IR elements through the operands of the rule that reads it.
/// Interval sets (rbtree) hold start elements and exclusive NFT_SET_ELEM_INTERVAL_END elements: a key
/// matches when the greatest element at or below it is a start. Concatenated interval sets (pipapo)
/// give each element an inclusive NFTA_SET_ELEM_KEY_END.
/// </summary>
internal static class SetLifter
{
    public static Set Build(TableContext table, SetUse use)
    {
        var rule = new RuleContext(table, use.Chain, use.Handle);
        var set = use.Set;
        int keyLen = (int)set.Set.KeyLen!.Value;
        var elems = new List<SetElement>(set.Elements.Count);
        bool interval = (set.Set.SetFlags & NftSetFlags.Interval) != 0;
        foreach (var e in set.Elements) Check(table, rule, use, e, keyLen);
        if (interval && use.Ops.Count == 1 && set.Elements.All(e => e.KeyEnd == null))
            Intervals(rule, use, elems);
        else
            foreach (var e in set.Elements) elems.Add(One(table, rule, use, e, keyLen, interval));
        var written = table.IsWritten(set.Name);
        var data = use.Vmap ? SetData.VerdictData : use.Objects ? SetData.ObjectData
            : WrittenData(table, set) is int bytes ? new SetData.Bytes(8 * bytes) : SetData.NoData;
        // nft_dynset_init gives a set it writes without a size 65535 (0xffff); the kernel's size check then counts every element
        int? size = !written ? null : set.Set.Desc?.Size is uint s and > 0 ? (int)Math.Min(s, int.MaxValue) : 0xffff;
        return new Set(table.SetName(set.Name), use.Key, data, elems.ToValueList(), TableContext.HasTimeouts(set))
        {
            PacketWritten = written,
            PacketStatements = table.PacketStatements(set.Name),
            RuleStatementLists = table.RuleStatementLists(set.Name),
            Size = size,
        };
    }

    /// <summary>
    /// The IR element one nft element added to or removed from an already lifted set stands for, or
    /// null when it cannot be expressed on its own exactly: a bound of a single-field interval set
    /// (its range depends on its neighbours), an operand that could map two register values to one
    /// key (masked or shifted loads: removing one would remove the other), or an element the lifter
    /// refuses. The caller then lifts the whole set again.
    /// </summary>
    public static SetElement? Element(TableContext table, SetUse use, NftSetElement e)
    {
        var set = use.Set;
        bool interval = (set.Set.SetFlags & NftSetFlags.Interval) != 0;
        if (interval && use.Ops.Count == 1) return null;
        // a new counter needs a slot in the program's counter map: the program is compiled again
        if (ElementStatements.Has(e)) return null;
        if (use.Ops.Any(o => o.Mask != null || o.ShiftLeft != 0 || o.ShiftRight != 0 && o.Keep == null)) return null;
        var rule = new RuleContext(table, use.Chain, use.Handle);
        int keyLen = (int)set.Set.KeyLen!.Value;
        try
        {
            Check(table, rule, use, e, keyLen);
            return One(table, rule, use, e, keyLen, interval);
        }
        catch (LiftException)
        {
            return null;
        }
    }

    static void Check(TableContext table, RuleContext rule, SetUse use, NftSetElement e, int keyLen)
    {
        string? why = null;
        if (ElementStatements.ElementRefusal(e, use.Objects) is { } statements) throw Refuse(rule, use, $"has {statements}");
        if ((e.ElemFlags & NftSetElemFlags.Catchall) != 0) why = "a catch-all element (*)";
        else if ((e.Timeout != null || e.Expiration != null) && !TableContext.HasTimeouts(use.Set)) why = "an element with a timeout";
        else if (e.ObjRef != null && !use.Objects) why = "an element mapping to an object";
        else if (use.Objects && (e.ElemFlags & NftSetElemFlags.IntervalEnd) == 0
            && (e.ObjRef == null || ObjectStatements.Find(table, e.ObjRef, use.Set.Set.ObjType) == null)) why = "an element naming no object of the table";
        else if (e.Key is not ValueData k || k.Value.Length != keyLen) why = "an element whose key does not have the set's length";
        else if (e.KeyEnd is not (null or ValueData)) why = "an element whose end key is not a value";
        if (why != null) throw Refuse(rule, use, $"has {why}, which bpfilter-nft does not support");
    }

    /// <summary>One element of an exact or concatenated-range set.</summary>
    static SetElement One(TableContext table, RuleContext rule, SetUse use, NftSetElement e, int keyLen, bool interval)
    {
        if ((e.ElemFlags & NftSetElemFlags.IntervalEnd) != 0)
            throw Refuse(rule, use, "has an interval end element in a set bpfilter-nft reads as exact or concatenated ranges");
        var key = ((ValueData)e.Key!).Value;
        var end = e.KeyEnd is ValueData ke ? ke.Value : null;
        if (end != null && end.Length != keyLen) throw Refuse(rule, use, "has an element whose end key does not have the set's length");
        // one array per element, handed to its key list without a copy (a set can hold millions)
        var parts = new KeyPart[use.Ops.Count];
        int at = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            var op = use.Ops[i];
            if (end == null && !interval)
                parts[i] = new KeyPart.Exact((parts.Length == 1 ? op.ConvertShared(key) : op.Convert(key.AsSpan(at))) ?? throw Never(rule, use, key));
            else
            {
                var from = op.Number(key.AsSpan(at));
                var to = end != null ? op.Number(end.AsSpan(at)) : from;
                parts[i] = Part(op, from, to) ?? throw Never(rule, use, key);
            }
            at += (op.RegLen + 3) / 4 * 4;
        }
        return new SetElement(ImmutableCollectionsMarshal.AsImmutableArray(parts), use.Vmap ? ElementVerdict(table, rule, use, e) : null,
            Data: ElementData(table, rule, use, e), Statements: StatementsOf(table, rule, use, e), Expires: Expires(e));
    }

    /// <summary>
    /// The data length of a map of values the packet path writes (`add @m { KEY : DATA }`): its elements then
    /// carry their data (the register bytes nft sent), which the BPF map holds for listings; null for other sets.
    /// </summary>
    static int? WrittenData(TableContext table, SourceSet set) =>
        table.IsWritten(set.Name) && (set.Set.SetFlags & NftSetFlags.Map) != 0 && (set.Set.SetFlags & NftSetFlags.Object) == 0
        && set.Set.DataType != Nft.Bytecode.Objects.Set.VerdictDataType && set.Set.DataLen is uint n and > 0 ? (int)n : null;

    static Value? ElementData(TableContext table, RuleContext rule, SetUse use, NftSetElement e)
    {
        if (use.Vmap || use.Objects || WrittenData(table, use.Set) is not int bytes) return null;
        return e.Data is ValueData d && d.Value.Length == bytes ? new Value(d.Value)
            : throw Refuse(rule, use, "has an element whose data does not have the map's length");
    }

    /// <summary>
    /// The element's expiry in jiffies: the engine keeps it as a deadline in milliseconds on the kernel's
    /// jiffies clock (<see cref="Bpfilter.Backend.Libbpf.KernelClock.NowMs"/>, whole ticks), so the division is exact.
    /// </summary>
    static ulong? Expires(NftSetElement e) =>
        e.Expiration is ulong ms ? Bpfilter.Backend.Libbpf.KernelClock.ToJiffies((long)Math.Min(ms, long.MaxValue)) : null;

    static void Intervals(RuleContext rule, SetUse use, List<SetElement> elems)
    {
        var op = use.Ops[0];
        var bounds = use.Set.Elements
            .Select(e => (Num: op.Number(((ValueData)e.Key!).Value), End: (e.ElemFlags & NftSetElemFlags.IntervalEnd) != 0, Elem: e))
            .OrderBy(b => b.Num).ThenBy(b => b.End ? 0 : 1).ToList();
        var limit = BigInteger.One << op.RegLen * 8;
        for (int i = 0; i < bounds.Count; i++)
        {
            var b = bounds[i];
            if (b.End) continue;
            var next = i + 1 < bounds.Count ? bounds[i + 1].Num : limit;
            if (next <= b.Num) continue; // an end and a start at one key: the start wins, the next bound closes it
            var part = Part(op, b.Num, next - 1);
            if (part is null) continue; // no value the masked load can hold falls in this range
            elems.Add(new SetElement(ValueList.Of(part), use.Vmap ? ElementVerdict(rule.Table, rule, use, b.Elem) : null,
                Statements: StatementsOf(rule.Table, rule, use, b.Elem)));
        }
    }

    /// <summary>The register range [from, to] as a key part of the operand's field: exact, prefix or range.</summary>
    static KeyPart? Part(Operand op, BigInteger from, BigInteger to)
    {
        if (op.Round(from, up: true) is not { } lo || op.Round(to, up: false) is not { } hi || lo > hi) return null;
        var a = Field(op, lo);
        var b = Field(op, hi);
        if (a is null || b is null) return null;
        if (a == b) return new KeyPart.Exact(op.FromNumber(lo)!);
        var size = b.Value - a.Value + 1;
        if (size.IsPowerOfTwo && (a.Value & (size - 1)) == 0)
        {
            int hostBits = (int)(size.GetBitLength() - 1);
            return new KeyPart.Prefix(op.FromNumber(lo)!, op.Field.Bits - hostBits);
        }
        return new KeyPart.Range(op.FromNumber(lo)!, op.FromNumber(hi)!);
    }

    static BigInteger? Field(Operand op, BigInteger reg) =>
        op.FromNumber(reg) is { } v ? new BigInteger(v.Bytes.AsSpan(), isUnsigned: true, isBigEndian: true) : null;

    /// <summary>
    /// What runs when a lookup finds the element: an object map element's object, as the statement the map's
    /// reader runs for it; another set's element statements (<see cref="ElementStatements"/>).
    /// </summary>
    static ValueList<Statement> StatementsOf(TableContext table, RuleContext rule, SetUse use, NftSetElement e)
    {
        if (!use.Objects) return ElementStatements.Of(table, use.Set.Name, e, why => Refuse(rule, use, $"has an element statement that cannot run: {why}"));
        var obj = ObjectStatements.Find(table, e.ObjRef!, use.Set.Set.ObjType)!;
        return ValueList.Of(ObjectStatements.Of(table, obj, why => Refuse(rule, use, $"names an object: {why}")));
    }

    static IrVerdict ElementVerdict(TableContext table, RuleContext rule, SetUse use, NftSetElement e)
    {
        if (e.Data is not VerdictData vd) throw Refuse(rule, use, "has an element without a verdict");
        var v = vd.Verdict;
        return v.Code switch
        {
            NftVerdict.Accept => IrVerdict.Accept,
            NftVerdict.Drop => IrVerdict.Drop,
            NftVerdict.Return => IrVerdict.Return,
            NftVerdict.Jump or NftVerdict.Goto => Target(table, rule, use, v),
            _ => throw Refuse(rule, use, $"maps to verdict {v}, which bpfilter-nft does not support in verdict maps"),
        };
    }

    static IrVerdict Target(TableContext table, RuleContext rule, SetUse use, NftVerdict v)
    {
        var target = v.Chain is { } n ? table.Source.FindChain(n) : null;
        if (target is null || target.IsBase) throw Refuse(rule, use, $"maps to {v}, which is not a regular chain of the table");
        var name = table.Reach(target.Name);
        return v.Code == NftVerdict.Jump ? IrVerdict.Jump(name) : IrVerdict.Goto(name);
    }

    static LiftException Never(RuleContext rule, SetUse use, byte[] key) =>
        Refuse(rule, use, $"has element 0x{Convert.ToHexString(key).ToLowerInvariant()} that the key '{use.Key}' can never hold");

    static LiftException Refuse(RuleContext rule, SetUse use, string reason) =>
        new(rule.Table.Family, rule.Table.Name, rule.Chain, rule.Handle, use.Index, $"set '{use.Set.Name}' {reason}", use.Set.Name);
}
