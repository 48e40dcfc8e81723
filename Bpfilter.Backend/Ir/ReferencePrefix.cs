namespace Bpfilter.Backend.Ir;

/// <summary>
/// The test every "fold only what was appended" path relies on: the rules a kept result was made from are, object by
/// object, the first rules now. Committed rules stay the same objects while they stay in their chain (the engine's
/// source view and the lifter hand them out unchanged), so a reference match means nothing before them changed.
/// </summary>
public static class ReferencePrefix
{
    /// <summary>Whether <paramref name="old"/> is, element by element and by reference, the start of <paramref name="now"/>.</summary>
    public static bool StartsWith<T>(IReadOnlyList<T> now, IReadOnlyList<T> old) where T : class
    {
        if (old.Count > now.Count) return false;
        for (var i = 0; i < old.Count; i++)
            if (!ReferenceEquals(old[i], now[i])) return false;
        return true;
    }
}
