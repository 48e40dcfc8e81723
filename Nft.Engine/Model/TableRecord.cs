using System.Collections.Immutable;

namespace Nft.Engine.Model;

/// <summary>An nf_tables table: its chains, sets and stateful objects, in creation order (dump order).</summary>
public sealed record TableRecord(
    byte Family,
    string Name,
    ulong Handle,
    uint Flags,
    byte[]? UserData,
    uint OwnerPortId,
    HandleCounter Handles,
    ImmutableList<ChainRecord> Chains,
    ImmutableList<SetRecord> Sets,
    ImmutableList<ObjectRecord> Objects)
{
    public bool IsDormant => (Flags & 1) != 0;

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
