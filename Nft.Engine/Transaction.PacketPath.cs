using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// Sets the data plane's packet path writes, refreshed lazily: the first time a batch targets such a set for its
/// elements, the set takes the data plane's live elements (<see cref="PacketPathElements"/>), once per batch. A batch
/// that never targets the set never reads it.
/// </summary>
internal sealed partial class Transaction
{
    /// <summary>
    /// Sets this batch targeted (by table and set handle): with the data plane's elements as they were then, or null
    /// when the committed elements are the truth.
    /// </summary>
    readonly Dictionary<(byte Family, string Table, ulong TableHandle, ulong Set), SetRecord?> _packetPath = new();

    /// <summary>
    /// Gives the set at (<paramref name="ti"/>, <paramref name="si"/>) the data plane's live elements, the first time
    /// this batch targets it, when it is the set committed before the batch (a set this batch created, or one by the
    /// same name in a table it recreated, is not the data plane's).
    /// </summary>
    void RefreshPacketPath(int ti, int si)
    {
        var t = Work.Tables[ti];
        var s = t.Sets[si];
        var key = (t.Family, t.Name, t.Handle, s.Handle);
        if (_packetPath.ContainsKey(key)) return;
        if (_ns.Committed.FindTable(t.Family, t.Name) is not { } ct || ct.Handle != t.Handle
            || ct.FindSet(s.Name) is not { } committed || committed.Handle != s.Handle
            || _ns.Backend.PacketPathElements(t.Family, t.Name, s.Name) is not { } live)
        {
            _packetPath[key] = null;
            return;
        }
        var merged = PacketPathElements.Merge(_ns, committed, live, withState: false);
        _packetPath[key] = merged;
        Work = Work with { Tables = Work.Tables.SetItem(ti, t with { Sets = t.Sets.SetItem(si, s with { Elements = merged.Elements }) }) };
    }

    /// <summary>The set as it was before this batch: committed, with the data plane's elements if this batch read them.</summary>
    SetRecord? Before(TableRecord t, SetRecord s) =>
        _packetPath.GetValueOrDefault((t.Family, t.Name, t.Handle, s.Handle)) ?? _ns.Committed.FindTable(t.Family, t.Name)?.FindSet(s.Name);
}
