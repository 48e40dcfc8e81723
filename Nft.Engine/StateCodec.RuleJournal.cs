using System.Collections.Immutable;
using System.Text;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// Rule journal records: a commit that changed rules of existing chains (adds, inserts, replaces, deletes),
/// and possibly elements of existing sets, is recorded as what it changed instead of the whole state. Per chain
/// the record holds the handles removed, every rule that is new or changed with its index in the chain after
/// the commit (its NEWRULE message and counter cells, as the state's rule record), and the chain's length
/// after it; and the backend's own state as it stands after the commit (<see cref="Counters.Backend"/>:
/// the data plane's counter slots change with the rules), as the change from the backend's state the full state
/// or the previous rule record held (<see cref="BackendStateDelta"/>; whole when that is not smaller).
/// <para>
/// Replay removes the handles, then puts the rules in ascending index: every rule before an index is in
/// place by then (rules never move in nf_tables, so the survivors keep their order), so a new rule is inserted
/// at its index and a changed one (same handle: replaced, or its counters reset) replaces the rule there,
/// which must carry its handle. The chain's length is checked at the end. Anything else a batch changed
/// (tables, chains, sets or objects added, deleted or updated) is not recorded: the whole state is written.
/// </para>
/// </summary>
internal static partial class StateCodec
{
    const ushort JChain = 7, JBackend = 8, JBackendDelta = 9;
    const ushort JcLength = 4, JcRemove = 5, JcPut = 6;
    // inside JcPut, beside the state's rule record attributes (Message, RCounter)
    const ushort JrIndex = 3;

    /// <summary>One chain's rule changes in a commit.</summary>
    public sealed record ChainChange(byte Family, string Table, string Chain, int Length, IReadOnlyList<ulong> Removed,
        IReadOnlyList<(int Index, RuleRecord Rule)> Puts);

    /// <summary>
    /// The rule changes from <paramref name="before"/> to <paramref name="after"/>, or null when something
    /// else changed too (every table, chain, set and object must be the same object, but for chains' rule lists
    /// and the elements of the sets in <paramref name="touchedSets"/>, which the element part of the record holds).
    /// Cost: a reference comparison per table, chain and set; per chain the commit changed, with <paramref name="touches"/>
    /// (the batch's own record of the rules it changed) a look-up of those rules from the chain's end back to the first of
    /// them, without it one pass over the chain's rules.
    /// </summary>
    public static List<ChainChange>? RuleChanges(RulesetSnapshot before, RulesetSnapshot after, IReadOnlySet<(byte, string, string)> touchedSets,
        RuleTouches? touches = null)
    {
        if (before.Tables.Count != after.Tables.Count) return null;
        var changes = new List<ChainChange>();
        for (int ti = 0; ti < after.Tables.Count; ti++)
        {
            TableRecord was = before.Tables[ti], now = after.Tables[ti];
            if (ReferenceEquals(was, now)) continue;
            if (!ReferenceEquals(was.Table, now.Table) || !ReferenceEquals(was.Objects, now.Objects)) return null;
            if (!SameSetsButTouched(was, now, touchedSets)) return null;
            if (ReferenceEquals(was.Chains, now.Chains)) continue;
            if (was.Chains.Count != now.Chains.Count) return null;
            for (int ci = 0; ci < now.Chains.Count; ci++)
            {
                ChainRecord a = was.Chains[ci], b = now.Chains[ci];
                if (ReferenceEquals(a, b)) continue;
                if (!ReferenceEquals(a.Chain, b.Chain)) return null;
                changes.Add(touches is { Complete: true } && touches.Of(now.Family, now.Name, b.Handle) is { } touched
                    && Diff(now, b, touched) is { } followed ? followed : Diff(now, a, b));
            }
        }
        return changes;
    }

    static bool SameSetsButTouched(TableRecord was, TableRecord now, IReadOnlySet<(byte, string, string)> touched)
    {
        if (ReferenceEquals(was.Sets, now.Sets)) return true;
        if (was.Sets.Count != now.Sets.Count) return false;
        for (int i = 0; i < now.Sets.Count; i++)
        {
            SetRecord a = was.Sets[i], b = now.Sets[i];
            if (ReferenceEquals(a, b)) continue;
            if (!ReferenceEquals(a.Set, b.Set) || !touched.Contains((now.Family, now.Name, b.Name))) return false;
        }
        return true;
    }

    /// <summary>Handles gone from <paramref name="a"/>, and the rules of <paramref name="b"/> that are not <paramref name="a"/>'s objects, with their index.</summary>
    static ChainChange Diff(TableRecord t, ChainRecord a, ChainRecord b)
    {
        // the rules before and after the change are the same objects at the same places: only what lies between is
        // matched by handle (a handle is in a chain once, so none of the middle's can be one of the ends')
        int prefix = 0, na = a.Rules.Count, nb = b.Rules.Count;
        using (IEnumerator<RuleRecord> ea = a.Rules.GetEnumerator(), eb = b.Rules.GetEnumerator())
            while (ea.MoveNext() && eb.MoveNext() && ReferenceEquals(ea.Current, eb.Current)) prefix++;
        int suffix = 0;
        while (suffix < na - prefix && suffix < nb - prefix && ReferenceEquals(a.Rules[na - 1 - suffix], b.Rules[nb - 1 - suffix])) suffix++;
        var old = new Dictionary<ulong, RuleRecord>(na - prefix - suffix);
        for (int k = prefix; k < na - suffix; k++) old[a.Rules[k].Handle] = a.Rules[k];
        var puts = new List<(int, RuleRecord)>();
        for (int i = prefix; i < nb - suffix; i++)
        {
            var r = b.Rules[i];
            if (!old.Remove(r.Handle, out var kept) || !ReferenceEquals(kept, r)) puts.Add((i, r));
        }
        // what is left of the old rules is what the commit deleted (in handle order: replay removes them as a set)
        var removed = old.Keys.ToList();
        removed.Sort();
        return new ChainChange(t.Family, t.Name, b.Name, b.Rules.Count, removed, puts);
    }

    /// <summary>
    /// As <see cref="Diff(TableRecord, ChainRecord, ChainRecord)"/>, from the batch's record of the rules it changed in the
    /// chain (<see cref="RuleTouches.Complete"/>: every other rule is the same object at its place): a touched rule in the
    /// chain now is new or changed (a replacement is a new record), one gone that the batch did not add was there before.
    /// Only the rules from the chain's end back to the first touched one are looked at: one for an appended rule.
    /// Null when a rule the record says is there is not (never so far: the whole diff is the answer then).
    /// </summary>
    static ChainChange? Diff(TableRecord t, ChainRecord b, RuleTouches.Chain touched)
    {
        var want = new HashSet<ulong>();
        var removed = new List<ulong>();
        foreach (var (handle, present) in touched.Present)
            if (present) want.Add(handle);
            else if (!touched.New.Contains(handle)) removed.Add(handle);
        removed.Sort();
        var puts = new List<(int, RuleRecord)>(want.Count);
        var rules = b.Rules;
        for (int end = rules.Count - 1; want.Count > 0; end--)
        {
            int i = end < 0 ? -1 : rules.FindLastIndex(end, end + 1, r => want.Contains(r.Handle));
            if (i < 0) return null;
            want.Remove(rules[i].Handle);
            puts.Add((i, rules[i]));
            end = i;
        }
        puts.Reverse();
        return new ChainChange(t.Family, t.Name, b.Name, rules.Count, removed, puts);
    }

    static void PutChainChange(NetlinkWriter w, ChainChange c)
    {
        var cn = w.BeginNestedRaw(JChain);
        w.PutU32(JsFamily, c.Family);
        w.PutRaw(JsTable, Encoding.UTF8.GetBytes(c.Table));
        w.PutRaw(JsName, Encoding.UTF8.GetBytes(c.Chain));
        w.PutU32(JcLength, (uint)c.Length);
        foreach (var h in c.Removed) PutU64(w, JcRemove, h);
        foreach (var (index, rule) in c.Puts)
        {
            var pn = w.BeginNestedRaw(JcPut);
            w.PutU32(JrIndex, (uint)index);
            PutRule(w, rule, c.Family);
            w.EndNested(pn);
        }
        w.EndNested(cn);
    }

    /// <summary>A chain change applied to <paramref name="tables"/> (see the class summary).</summary>
    static ImmutableList<TableRecord> ApplyChainChange(ImmutableList<TableRecord> tables, byte[] nest)
    {
        var c = new Attrs(nest);
        byte family = (byte)c.U32(JsFamily);
        string table = NameOf(c.Required(JsTable)), name = NameOf(c.Required(JsName));
        int ti = tables.FindIndex(t => t.Family == family && t.Name == table);
        if (ti < 0) throw Bad($"journal: no table {table} (family {family})");
        var t = tables[ti];
        int ci = t.IndexOfChain(name);
        if (ci < 0) throw Bad($"journal: no chain {name} in table {table}");
        var rules = t.Chains[ci].Rules;
        var removed = c.All(JcRemove).Select(b => b.Length == 8 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b) : throw Bad("journal: a removed handle is not 8 bytes")).ToHashSet();
        if (removed.Count > 0)
        {
            int count = rules.Count;
            rules = rules.RemoveAll(r => removed.Contains(r.Handle));
            if (count - rules.Count != removed.Count) throw Bad($"journal: chain {name} lacks a rule the record removes");
        }
        int last = -1;
        foreach (var p in c.All(JcPut))
        {
            var pa = new Attrs(p);
            int index = (int)Math.Min(pa.U32(JrIndex), int.MaxValue);
            if (index <= last || index > rules.Count) throw Bad($"journal: rule index {index} in chain {name} of {rules.Count} rules (after {last})");
            last = index;
            var rule = RuleOf(pa);
            if (index < rules.Count && rules[index].Handle == rule.Handle) rules = rules.SetItem(index, rule);
            else rules = rules.Insert(index, rule);
        }
        uint length = c.U32(JcLength);
        if (rules.Count != length) throw Bad($"journal: chain {name} has {rules.Count} rules after the record, which says {length}");
        return tables.SetItem(ti, t with { Chains = t.Chains.SetItem(ci, t.Chains[ci] with { Rules = rules }) });
    }
}
