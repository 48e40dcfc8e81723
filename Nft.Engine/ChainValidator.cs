using Nft.Bytecode;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// nft_table_validate: walks every jump and goto (rules and verdict maps) from each base chain;
/// reaching a chain at depth NFT_JUMP_STACK_SIZE fails with EMLINK, which is also how loops show up.
/// </summary>
internal static class ChainValidator
{
    public static bool HasJumps(TableRecord t)
    {
        foreach (var c in t.Chains)
            foreach (var r in c.Rules)
                foreach (var e in r.Expressions)
                    if (ExprRefs.ChainTarget(e) != null || ExprRefs.SetName(e) != null) return true;
        return false;
    }

    public static void Validate(TableRecord t)
    {
        if (!t.Chains.Any(c => c.IsBase) || !HasJumps(t)) return;
        var okAt = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var c in t.Chains)
            if (c.IsBase) Walk(t, c, 0, okAt);
    }

    static void Walk(TableRecord t, ChainRecord c, int level, Dictionary<string, int> okAt)
    {
        if (level == NftLimits.JumpStackSize) throw new NetlinkException(Errno.EMLINK);
        // Validated before at this depth or shallower: nothing new below.
        if (okAt.TryGetValue(c.Name, out int l) && l <= level) return;
        foreach (var r in c.Rules)
            foreach (var e in r.Expressions)
            {
                if (ExprRefs.ChainTarget(e) is string to && t.FindChain(to) is { } target)
                    Walk(t, target, level + 1, okAt);
                else if (ExprRefs.SetName(e) is string sn && t.FindSet(sn) is { IsVerdictMap: true } map)
                    foreach (var el in map.Elements)
                        if (el.Verdict?.Chain is string ch && t.FindChain(ch) is { } mt)
                            Walk(t, mt, level + 1, okAt);
            }
        okAt[c.Name] = level;
    }
}
