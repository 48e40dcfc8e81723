using Nft.Bytecode;
using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>
/// The part of a caller's table that a kernel table found at adoption holds (<see cref="KernelPlacement.Adopt"/>): each
/// chain the kernel holds is one of the caller's with the same hook, priority, policy and number of rules, each named set
/// one of the caller's with the same key length, each object one of the caller's (name and type) or a named counter or
/// quota no rule names (use 0). A daemon dying between a kernel commit and the export of its state leaves such a table:
/// the commit took some of the state's chains, sets or objects away, or kept a named counter or quota BPF took over
/// for the read after it (bpfilterd's LingeringObjects), or a failed second transaction left one. Adopted as this part,
/// the next transition adds what is missing and deletes what is extra in place, so the chains the kernel kept go on
/// with their own counters, quotas and limits, where a stale table would be recreated from the caller's values.
/// </summary>
internal static class HeldPart
{
    /// <summary>The part of <paramref name="expected"/> that <paramref name="kernel"/> holds, with its extra unnamed objects; null if it holds anything else.</summary>
    public static SourceTable? Of(SourceTable kernel, SourceTable expected)
    {
        var chains = new List<SourceChain>();
        foreach (var k in kernel.Chains)
        {
            if (expected.FindChain(k.Name) is not { } e || Shape(e) != Shape(k)) return null;
            chains.Add(e);
        }
        var sets = new List<SourceSet>();
        foreach (var k in kernel.Sets.Where(s => !Anonymous(s)))
        {
            if (expected.FindSet(k.Name) is not { } e || e.Set.KeyLen != k.Set.KeyLen) return null;
            sets.Add(e);
        }
        var objects = new List<NftObject>();
        foreach (var k in kernel.Objects ?? [])
        {
            if ((expected.Objects ?? []).FirstOrDefault(e => e.Name == k.Name && e.Type == k.Type) is { } e) objects.Add(e);
            else if (k.ObjectType is NftObjectType.Counter or NftObjectType.Quota && k.Use is null or 0) objects.Add(k);
            else return null;
        }
        // anonymous sets travel with their rules: the caller's describe the rules kept
        return expected with { Chains = chains, Sets = [.. sets, .. expected.Sets.Where(Anonymous)], Objects = objects };
    }

    static bool Anonymous(SourceSet s) => s.Name.StartsWith("__", StringComparison.Ordinal);

    static string Shape(SourceChain c) => $"{c.Chain.Hook?.HookNum}:{c.Chain.Hook?.Priority}:{c.Chain.Policy}:{c.Rules.Count}";
}
