using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// `add set` naming an existing set updates its timeout and gc interval at commit, as nf_tables_commit does for an
/// nft_trans_set_update: both are replaced by what the update sent (none sent is 0: the default timeout is gone).
/// </summary>
internal sealed partial class Transaction
{
    /// <summary>Sets (by handle) an `add set` updated in this batch, with the timeout and gc interval it sent; the last wins.</summary>
    /// The set's definition as the update left it identifies it: a set deleted and created again by that name (alone or
    /// with its table, which may hand out the same handle) is another object, not updated.
    readonly Dictionary<(byte Family, string Table, ulong Handle), (Nft.Bytecode.Objects.Set Definition, ulong? Timeout, uint? GcInterval)> _setUpdates = new();

    /// <summary>
    /// Applies the batch's set updates to <see cref="Work"/> (the commit's step; a set deleted since is skipped). An
    /// element keeps its own timeout and expiry; the dump shows its timeout where it now differs from the set's
    /// (nf_tables_fill_setelem compares with set->timeout as it dumps).
    /// </summary>
    public void ApplySetUpdates()
    {
        foreach (var ((family, table, handle), (definition, timeout, gc)) in _setUpdates)
        {
            int ti = Work.IndexOfTable(family, table);
            if (ti < 0) continue;
            var t = Work.Tables[ti];
            int si = t.IndexOfSet(handle);
            if (si < 0 || !ReferenceEquals(t.Sets[si].Set, definition)) continue;
            var s = t.Sets[si];
            ulong shownAgainst = timeout ?? 0;
            ElementSet elements = s.Elements;
            if (shownAgainst != (s.Set.Timeout ?? 0))
            {
                var b = s.Elements.ToBuilder();
                foreach (var e in s.Elements)
                {
                    ulong? shown = e.Timeout is ulong own && own != shownAgainst ? own : null;
                    if (shown != e.Element.Timeout) b.SetItem(e with { Element = e.Element with { Timeout = shown } });
                }
                elements = b.ToImmutable();
            }
            var updated = s with { Set = s.Set with { Timeout = timeout, GcInterval = gc }, Elements = elements };
            PutTable(ti, t with { Sets = t.Sets.SetItem(si, updated) });
        }
    }
}
