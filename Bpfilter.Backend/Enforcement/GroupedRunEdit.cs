using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// One rule added to or deleted from a grouped run (<see cref="RuleGrouping"/>) of a running program, as map updates
/// worked out from the change alone: the chain is neither lowered nor compiled. It is what a full compile with the
/// running program's counter layout would give (same instructions, the run's map with one element more or less,
/// the new rule's counter at the first slot no counter held), taken only when that is certain without compiling:
/// every other chain, reached chain and set of the attach point unchanged, the rule's run holds no jump (a jump
/// splits a run at a repeated key), the rule's key value is the only one of its kind in the run (no earlier rule
/// shadows it and it shadows none), the run is grouped before and after (at least <see cref="RuleGrouping.DefaultMinRun"/>
/// rules, no rule before it ends the chain), and the chain has one grouped run of that key (so which map holds
/// the run is known). Anything else is null: the caller compiles, and <see cref="MapDiff.Between"/> decides.
/// </summary>
internal static class GroupedRunEdit
{
    /// <summary>The edit from the source <paramref name="was"/> that <paramref name="loaded"/> runs to <paramref name="now"/>, or null.</summary>
    /// <param name="runs">
    /// Each chain's trailing run kept from earlier prepares: a rule appended to the chain then finds its run without
    /// walking it (null: walk the run, which gives the same edit).
    /// </param>
    public static (CompiledProgram Compiled, MapDiff Diff)? Between(LoadedProgram loaded, UnitSource was, UnitSource now, ChainFolds<TrailingRun>? runs = null)
    {
        if (now.OneChainsRulesChangedFrom(was) is not var (before, after)) return null;
        var added = after.Rules.Count == before.Rules.Count + 1;
        if (!added && after.Rules.Count != before.Rules.Count - 1) return null;
        var (longer, shorter) = added ? (after.Rules, before.Rules) : (before.Rules, after.Rules);
        var p = 0;
        while (p < shorter.Count && UnitSource.Same(shorter[p], longer[p])) p++;
        for (var q = p; q < shorter.Count; q++)
            if (!UnitSource.Same(shorter[q], longer[q + 1])) return null;
        var rule = longer[p];
        if (RuleGrouping.KeyOf(rule) is not { } key || rule.Verdict is JumpVerdict) return null;

        var value = RuleGrouping.ValueOf(rule);
        int index, distinct; // the rule's element's place in the run's map (the first-seen key values before it), the run's values but the rule's
        Rule first; // the run's first rule before the change, whose element comes first in the running map
        if (added && p == shorter.Count && runs != null)
        {
            // appended to the chain: its run is the one the rules before it end with, when that has its key
            // (SameKey is the grouping's key test), and every value of that run comes before it
            var tail = runs.Of(before.Name, shorter);
            if (tail.Key != key || p - tail.Start < RuleGrouping.DefaultMinRun || tail.EndedBefore || tail.Jumps
                || tail.Values.Contains(value)) return null;
            (index, distinct, first) = (tail.Values.Count, tail.Values.Count, longer[tail.Start]);
        }
        else
        {
            // the run of rules with the rule's lookup key around it, in the longer list
            var (i, j) = (p, p + 1);
            while (i > 0 && SameKey(longer[i - 1], rule, key)) i--;
            while (j < longer.Count && SameKey(longer[j], rule, key)) j++;
            if (j - i - 1 < RuleGrouping.DefaultMinRun) return null;
            for (var x = 0; x < i; x++)
                if (UnreachableRules.EndsChain(longer[x])) return null;
            var seen = new HashSet<Value>();
            index = 0;
            first = added && p == i ? longer[i + 1] : longer[i];
            for (var x = i; x < j; x++)
            {
                if (longer[x].Verdict is JumpVerdict) return null;
                if (x == p) continue;
                var v = RuleGrouping.ValueOf(longer[x]);
                if (v == value) return null;
                if (seen.Add(v) && x < p) index++;
            }
            distinct = seen.Count;
        }

        var compiled = loaded.Compiled;
        var prefix = RuleGrouping.GroupPrefix(before.Name);
        SetLayout? layout = null;
        foreach (var (name, l) in compiled.SetLayouts)
        {
            if (!name.StartsWith(prefix, StringComparison.Ordinal) || l.Set.Key != key || l.Set.Data is not SetData.Verdict) continue;
            if (layout != null) return null;
            layout = l;
        }
        // the map holds the run as it was: its distinct key values, the first rule's first
        if (layout == null || layout.Set.Elements.Count != distinct + (added ? 0 : 1)
            || layout.Set.Elements[0] != RuleGrouping.ElementOf(key, RuleGrouping.ValueOf(first), first)) return null;

        var slots = new Dictionary<ulong, int>(compiled.CounterSlots);
        var used = compiled.CounterSlotsUsed;
        var counters = rule.CounterIds.ToList();
        if (added)
        {
            // as the compiler hands out a new id's slot (CounterLayout): past every slot the program held
            var next = Math.Max(used, slots.Count == 0 ? 0 : slots.Values.Max() + 1);
            foreach (var id in counters)
            {
                if (slots.ContainsKey(id) || next >= loaded.CounterCapacity) return null;
                slots[id] = next++;
            }
            used = Math.Max(used, next);
        }
        else
            foreach (var id in counters) slots.Remove(id);

        var element = RuleGrouping.ElementOf(key, value, rule);
        var elements = layout.Set.Elements.ToList();
        if (added) elements.Insert(index, element);
        else if (index >= elements.Count || elements[index] != element) return null;
        else elements.RemoveAt(index);
        var set = layout.Set with { Elements = elements.ToValueList() };
        var mapName = ProgramCompiler.SetMapName(set.Name);
        if (loaded.SetMap(set.Name) is not { } map || loaded.Entries(mapName) is not { } live) return null;
        SetLayout edited;
        List<(byte[] Key, byte[] Value)> entries;
        try
        {
            // the map's verdict codes and element statement shapes are its elements' in first-occurrence order, and
            // the code dispatches on them: an element added anywhere but at the end, or one deleted, may change them
            // (a full compile derives them from the elements), an element added at the end only with a verdict or
            // shape they lack, which encoding it with the running layout refuses below
            if (!added || index < layout.Set.Elements.Count)
            {
                var full = new SetLayout(set, set.Elements.Select(e => e.Verdict!).Distinct().ToList());
                if (!full.VerdictCodes.SequenceEqual(layout.VerdictCodes) || !full.StatementShapes.SequenceEqual(layout.StatementShapes)) return null;
            }
            edited = layout.WithElements(set, id => slots.TryGetValue(id, out var s) ? s : null);
            entries = (added ? edited : layout).EntriesOf(element);
        }
        catch (CodegenException)
        {
            return null; // a verdict or counter shape the program was not compiled with: the code changes
        }
        MapDiff.MapChange change;
        if (added)
        {
            if (entries.Any(e => live.ContainsKey(e.Key)) || live.Count + entries.Count > map.MaxEntries) return null;
            change = new MapDiff.MapChange(mapName, [], entries);
        }
        else
        {
            if (entries.Any(e => !live.TryGetValue(e.Key, out var v) || !v.AsSpan().SequenceEqual(e.Value))) return null;
            change = new MapDiff.MapChange(mapName, entries.Select(e => e.Key).ToList(), []);
        }
        var layouts = new Dictionary<string, SetLayout>(compiled.SetLayouts, StringComparer.Ordinal) { [set.Name] = edited };
        return (compiled with { CounterSlots = slots, CounterSlotsUsed = used, SetLayouts = layouts }, new MapDiff(loaded, [change]));
    }


    /// <summary>
    /// Whether <paramref name="r"/> groups with <paramref name="rule"/> (lookup key <paramref name="key"/>): the same
    /// matcher keys compared with == first (no allocation: a run is walked whole), else the grouping's own test.
    /// </summary>
    static bool SameKey(Rule r, Rule rule, MatchKey key)
    {
        if (r.Matchers.Count == rule.Matchers.Count && r.Verdict is AcceptVerdict or DropVerdict or JumpVerdict or GotoVerdict
            && (r.Statements.Count == 0 || (r.Statements.Count == 1 && r.Statements[0] is CounterStatement)))
        {
            var same = true;
            for (var m = 0; m < r.Matchers.Count && same; m++)
                same = r.Matchers[m].Operator is Compare { Op: CompareOp.Eq } && UnitSource.Same(r.Matchers[m].Key, rule.Matchers[m].Key);
            if (same) return true;
        }
        return RuleGrouping.KeyOf(r) == key;
    }
}
