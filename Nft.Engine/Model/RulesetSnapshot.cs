using System.Collections.Immutable;

namespace Nft.Engine.Model;

/// <summary>
/// The committed (or proposed) ruleset of one network namespace: immutable, so a backend can
/// compile it while the next transaction builds its successor.
/// </summary>
public sealed record RulesetSnapshot(ImmutableList<TableRecord> Tables)
{
    public static readonly RulesetSnapshot Empty = new(ImmutableList<TableRecord>.Empty);

    public int IndexOfTable(byte family, string name)
    {
        for (int i = 0; i < Tables.Count; i++)
            if (Tables[i].Family == family && Tables[i].Name == name) return i;
        return -1;
    }

    public TableRecord? FindTable(byte family, string name)
    {
        int i = IndexOfTable(family, name);
        return i < 0 ? null : Tables[i];
    }
}
