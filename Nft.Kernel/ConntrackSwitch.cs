using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>
/// Switches conntrack on or off in the socket's network namespace. Conntrack runs in a namespace only
/// while something holds a reference (nf_ct_netns_get), which a BPF program cannot take. A kernel
/// nf_tables <c>ct</c> expression takes one when it is created, even in a chain no hook calls: so the
/// switch is table <see cref="Family"/> <see cref="TableName"/> holding a regular chain with one rule
/// that loads <c>ct state</c>. No packet ever runs it. inet references both IPv4 and IPv6 conntrack.
/// </summary>
public static class ConntrackSwitch
{
    /// <summary>inet: one reference covers IPv4 and IPv6.</summary>
    public const byte Family = 1;

    /// <summary>
    /// The reserved table name. The emulation must refuse it to users (with the errno it answers for
    /// any name it cannot take), so no user table is ever placed under it.
    /// </summary>
    public const string TableName = "bpfilterd-conntrack";

    public const string ChainName = "conntrack";

    static Table Table => new() { Family = Family, Name = TableName };

    /// <summary>Whether the switch table is in the kernel.</summary>
    public static bool IsOn(KernelNfTablesSocket socket) =>
        socket.Dump<Table>(NftMsgType.GetTable, Family, new Table()).Any(t => t.Name == TableName);

    /// <summary>Idempotent: does nothing if conntrack is already switched on by this table.</summary>
    public static void On(KernelNfTablesSocket socket)
    {
        if (IsOn(socket)) return;
        var batch = new KernelBatch()
            .Add(NftMsgType.NewTable, Family, Table, $"add table inet {TableName}", Nft.Netlink.NlmFlags.Create)
            .Add(NftMsgType.NewChain, Family, new Chain { Family = Family, Table = TableName, Name = ChainName },
                $"add chain inet {TableName} {ChainName}", Nft.Netlink.NlmFlags.Create)
            .Add(NftMsgType.NewRule, Family, new Rule
            {
                Family = Family,
                Table = TableName,
                Chain = ChainName,
                Expressions = [new CtExpr(CtExpr.KeyState, DReg: NftRegisters.Reg1)],
            }, $"add rule inet {TableName} {ChainName} ct state", Nft.Netlink.NlmFlags.Create | Nft.Netlink.NlmFlags.Append);
        socket.SendBatch(batch, commit: true).ThrowIfFailed("switching conntrack on");
    }

    /// <summary>Idempotent: deletes the switch table if present (connections already tracked age out as usual).</summary>
    public static void Off(KernelNfTablesSocket socket)
    {
        if (!IsOn(socket)) return;
        var batch = new KernelBatch().Add(NftMsgType.DelTable, Family, Table, $"delete table inet {TableName}");
        socket.SendBatch(batch, commit: true).ThrowIfFailed("switching conntrack off");
    }
}
