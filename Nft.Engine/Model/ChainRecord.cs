using System.Collections.Immutable;
using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// A chain: the Nft.Bytecode chain as the kernel stores it (name, handle, flags, user data; for base
/// chains the hook with its devices as a list, the type and the policy; no table, which the record's
/// table supplies, and no use count, which dumps compute), with its rules.
/// </summary>
public sealed record ChainRecord(Chain Chain, ImmutableList<RuleRecord> Rules)
{
    public string Name => Chain.Name!;
    public ulong Handle => Chain.Handle ?? 0;
    public uint Flags => Chain.Flags ?? 0;
    public bool IsBase => Chain.Hook != null;
    /// <summary>The hook's devices (netdev-family hooks), empty otherwise.</summary>
    public IReadOnlyList<string> Devices => Chain.Hook?.Devices ?? [];

    public int IndexOfRule(ulong handle)
    {
        for (int i = 0; i < Rules.Count; i++) if (Rules[i].Handle == handle) return i;
        return -1;
    }
}
