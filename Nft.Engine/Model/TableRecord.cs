using System.Collections.Immutable;
using Nft.Bytecode;
using Nft.Bytecode.Objects;

namespace Nft.Engine.Model;

/// <summary>
/// An nf_tables table: the Nft.Bytecode table as the kernel stores it (name, handle, flags, user
/// data, and the owner's port when NFT_TABLE_F_OWNER is set; no use count, which dumps compute), with
/// the engine's bookkeeping: the handle counter and its chains, sets and stateful objects in creation
/// order (dump order).
/// </summary>
public sealed record TableRecord(
    Table Table,
    HandleCounter Handles,
    ImmutableList<ChainRecord> Chains,
    ImmutableList<SetRecord> Sets,
    ImmutableList<ObjectRecord> Objects)
{
    public byte Family => Table.Family;
    public string Name => Table.Name!;
    public ulong Handle => Table.Handle ?? 0;
    public uint Flags => Table.Flags ?? 0;
    public bool IsDormant => (Flags & (uint)NftTableFlags.Dormant) != 0;
    public bool IsOwned => (Flags & (uint)NftTableFlags.Owner) != 0;

    /// <summary>An owned table is private to the port that owns it (nft_table_lookup's EPERM).</summary>
    public bool OwnedByOther(uint portId) => IsOwned && Table.Owner != portId;

    public int IndexOfChain(string name)
    {
        for (int i = 0; i < Chains.Count; i++) if (Chains[i].Name == name) return i;
        return -1;
    }

    public int IndexOfChain(ulong handle)
    {
        for (int i = 0; i < Chains.Count; i++) if (Chains[i].Handle == handle) return i;
        return -1;
    }

    public int IndexOfSet(string name)
    {
        for (int i = 0; i < Sets.Count; i++) if (Sets[i].Name == name) return i;
        return -1;
    }

    public int IndexOfSet(ulong handle)
    {
        for (int i = 0; i < Sets.Count; i++) if (Sets[i].Handle == handle) return i;
        return -1;
    }

    public int IndexOfObject(string name, uint type)
    {
        for (int i = 0; i < Objects.Count; i++) if (Objects[i].Name == name && Objects[i].Type == type) return i;
        return -1;
    }

    public int IndexOfObject(ulong handle)
    {
        for (int i = 0; i < Objects.Count; i++) if (Objects[i].Handle == handle) return i;
        return -1;
    }

    public ChainRecord? FindChain(string name) => IndexOfChain(name) is int i and >= 0 ? Chains[i] : null;
    public SetRecord? FindSet(string name) => IndexOfSet(name) is int i and >= 0 ? Sets[i] : null;
}
