using System.Collections.Immutable;

namespace Nft.Engine.Model;

/// <summary>A chain; <see cref="Hook"/> is set for base chains.</summary>
public sealed record ChainRecord(
    string Name,
    ulong Handle,
    uint Flags,
    BaseChainHook? Hook,
    byte[]? UserData,
    ImmutableList<RuleRecord> Rules)
{
    public bool IsBase => Hook != null;

    public int IndexOfRule(ulong handle)
    {
        for (int i = 0; i < Rules.Count; i++) if (Rules[i].Handle == handle) return i;
        return -1;
    }
}

/// <summary>Where a base chain is attached: hook number, priority, chain type, policy, devices.</summary>
/// <param name="DevicesAsList">the devices came as NFTA_HOOK_DEVS (a list) rather than one NFTA_HOOK_DEV</param>
public sealed record BaseChainHook(
    uint HookNum,
    int Priority,
    string Type,
    uint Policy,
    ImmutableArray<string> Devices,
    bool DevicesAsList);
