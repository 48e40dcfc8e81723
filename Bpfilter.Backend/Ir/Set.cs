using System.Text;

namespace Bpfilter.Backend.Ir;

/// <summary>
/// A named set or map. Key: the field list of its elements. Data: none (a set), a verdict (a vmap)
/// or a value of some width (a data map). Elements may be exact values, prefixes or ranges per key
/// field; the backend picks the map type (hash for exact keys, LPM trie for prefixes/ranges) and
/// refuses element shapes it cannot represent faithfully. Timeouts: the set has nft's `flags timeout`
/// (or a default timeout): its elements may expire, so every lookup compares their expiry with the
/// kernel's jiffies.
/// </summary>
public sealed record Set(string Name, MatchKey Key, SetData Data, ValueList<SetElement> Elements, bool Timeouts = false)
{
    /// <summary>
    /// True when a rule changes the set from the packet path (<see cref="SetUpdateStatement"/>): its map is
    /// then written by BPF too, and holds at most <see cref="Size"/> elements.
    /// </summary>
    public bool PacketWritten { get; init; }

    /// <summary>
    /// The statements an element the packet path adds carries (the dynset's `{ key counter }`, a meter's
    /// `limit`, or the set's own declared ones, as nft_dynset_new clones them), their slots and ids left at 0:
    /// each element holds their state in its own value (see the backend's SetLayout). Empty: none. When rules give
    /// several lists, the first (see <see cref="RuleStatementLists"/>).
    /// </summary>
    public ValueList<Statement> PacketStatements { get; init; }

    /// <summary>
    /// Every statement list an element of the set may carry (nft_dynset_new clones the list of the rule that made the
    /// element, and every dynset and lookup that finds it runs that list, nft_set_elem_update_expr): an element's tag,
    /// in its value, is its list's index here. Holds <see cref="PacketStatements"/> when that is not empty; lists a
    /// replaced rule gave elements that still live stay at their index (the tags in the map name them). Empty: just
    /// <see cref="PacketStatements"/>, tag 0.
    /// </summary>
    public ValueList<ValueList<Statement>> PacketStatementLists { get; init; }

    /// <summary>
    /// Every list the rules writing the set give the elements they make (each <see cref="SetUpdateStatement.Stateful"/>),
    /// distinct, not empty, in the order the rules first give them, when they give more than one (nft_dynset_new clones
    /// the making rule's own list); <see cref="PacketStatements"/> is then the first. Empty: the rules give at most
    /// <see cref="PacketStatements"/>.
    /// </summary>
    public ValueList<ValueList<Statement>> RuleStatementLists { get; init; }

    /// <summary>The most statement lists a set's elements may carry (the tags the BPF backend dispatches on).</summary>
    public const int MaxElementLists = 16;

    /// <summary>The lists the rules give new elements (<see cref="RuleStatementLists"/>, else <see cref="PacketStatements"/> alone); empty when they give none.</summary>
    public IReadOnlyList<ValueList<Statement>> RuleLists =>
        !RuleStatementLists.IsEmpty ? RuleStatementLists : PacketStatements.IsEmpty ? [] : [PacketStatements];

    /// <summary>The lists elements may carry, by tag (see <see cref="PacketStatementLists"/>); empty when no element carries any.</summary>
    public IReadOnlyList<ValueList<Statement>> ElementLists => !PacketStatementLists.IsEmpty ? PacketStatementLists : RuleLists;

    /// <summary>The tag of the elements a rule giving <paramref name="list"/> makes (its index in <see cref="ElementLists"/>); -1 for none or a list not there.</summary>
    public int TagOf(ValueList<Statement> list)
    {
        if (list.IsEmpty) return -1;
        var lists = ElementLists;
        for (var i = 0; i < lists.Count; i++)
            if (lists[i] == list) return i;
        return -1;
    }

    /// <summary>The tag of <see cref="PacketStatements"/> (<see cref="TagOf"/>); -1 when it is empty.</summary>
    public int PacketTag
    {
        get => TagOf(PacketStatements);
    }

    /// <summary>
    /// The most elements the set holds (nft's `size`; nft_dynset makes an unsized set's 65535), counted as
    /// the kernel's set->nelems; null: no bound beyond the map's own.
    /// </summary>
    public int? Size { get; init; }

    public bool IsMap => Data is not SetData.None;

    /// <summary>True when some element is not an exact value.</summary>
    public bool HasIntervals
    {
        get
        {
            // a loop, not LINQ: a grouped run of 10,000 rules is a set read on every commit that compiles it
            foreach (var e in Elements)
                foreach (var p in e.Key)
                    if (p is not KeyPart.Exact) return true;
            return false;
        }
    }

    public override string ToString()
    {
        var sb = new StringBuilder($"set {Name} {{ type {Key}");
        if (IsMap) sb.Append(" : ").Append(Data);
        if (Timeouts) sb.Append("; flags timeout");
        if (PacketWritten) sb.Append("; flags dynamic");
        if (!PacketStatements.IsEmpty) sb.Append("; element statements ").Append(string.Join(" ", PacketStatements));
        if (!RuleStatementLists.IsEmpty)
            sb.Append("; rule statement lists ").Append(string.Join(", ", RuleStatementLists.Select(l => "[" + string.Join(" ", l) + "]")));
        if (!PacketStatementLists.IsEmpty)
            sb.Append("; element statement lists ").Append(string.Join(", ", PacketStatementLists.Select(l => "[" + string.Join(" ", l) + "]")));
        if (Size is int size) sb.Append("; size ").Append(size);
        sb.Append("; elements = { ");
        sb.Append(string.Join(", ", Elements.Select(e => e.Format(Key))));
        return sb.Append(" } }").ToString();
    }
}

public abstract record SetData
{
    public sealed record None : SetData { public override string ToString() => "none"; }
    public sealed record Verdict : SetData { public override string ToString() => "verdict"; }
    /// <summary>A data map whose values are Bits wide (big-endian like every <see cref="Value"/>).</summary>
    public sealed record Bytes(int Bits) : SetData { public override string ToString() => $"{Bits} bits"; }
    /// <summary>An object map: each element names a stateful object, whose statement is the element's (see <see cref="ObjectMapStatement"/>).</summary>
    public sealed record Object : SetData { public override string ToString() => "object"; }

    public static readonly SetData NoData = new None();
    public static readonly SetData VerdictData = new Verdict();
    public static readonly SetData ObjectData = new Object();
}

/// <summary>One key component of a set element, per key field.</summary>
public abstract record KeyPart
{
    public sealed record Exact(Value Value) : KeyPart;
    /// <summary>Value/Length: the first Length bits of Value (the rest must be zero).</summary>
    public sealed record Prefix(Value Value, int Length) : KeyPart;
    /// <summary>Inclusive range From..To.</summary>
    public sealed record Range(Value From, Value To) : KeyPart;

    internal string Format(Field f) => this switch
    {
        Exact e => e.Value.Format(f.Display),
        Prefix p => $"{p.Value.Format(f.Display)}/{p.Length}",
        Range r => $"{r.From.Format(f.Display)}-{r.To.Format(f.Display)}",
        _ => "?",
    };
}

/// <summary>
/// A set element: one KeyPart per key field, plus the verdict (vmap) or data (map). Statements: what
/// runs for the element when a lookup finds it, before its verdict (nft's per-element `counter`).
/// Expires: the jiffies64 value from which on the element no longer matches (nf_tables' expiration,
/// compared as <c>time_after_eq64(jiffies64, Expires)</c>); null: it never expires.
/// </summary>
public sealed record SetElement(ValueList<KeyPart> Key, Verdict? Verdict = null, Value? Data = null, ValueList<Statement> Statements = default,
    ulong? Expires = null)
{
    public static SetElement Exact(Value value, Verdict? verdict = null) =>
        new(ValueList.Of<KeyPart>(new KeyPart.Exact(value)), verdict);

    public string Format(MatchKey key)
    {
        var k = string.Join(" . ", Key.Select((p, i) => i < key.Fields.Count ? p.Format(key.Fields[i]) : p.ToString()));
        foreach (var s in Statements) k += " " + s;
        if (Expires is ulong x) k += $" expires@{x}";
        if (Verdict is not null) return $"{k} : {Verdict}";
        if (Data is not null) return $"{k} : {Data}";
        return k;
    }
}
