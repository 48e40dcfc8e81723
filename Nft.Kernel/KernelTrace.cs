using System.Buffers.Binary;
using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Kernel;

/// <summary>
/// An NFT_MSG_TRACE the kernel multicast for a chain the placement put there, turned into the one the
/// caller's nf_tables (the emulation) would send: identical bytes but for NFTA_TRACE_RULE_HANDLE, which
/// names the caller's rule. Table and chain names, verdicts (jump targets by name), the trace id and
/// the packet's headers are the same on both sides.
/// </summary>
public static class KernelTrace
{
    // enum nft_trace_attributes (linux/netfilter/nf_tables.h)
    public const ushort NFTA_TRACE_TABLE = 1, NFTA_TRACE_CHAIN = 2, NFTA_TRACE_RULE_HANDLE = 3, NFTA_TRACE_TYPE = 4,
        NFTA_TRACE_VERDICT = 5, NFTA_TRACE_ID = 6;

    /// <summary>
    /// The caller's form of every trace message in <paramref name="datagram"/>, one datagram each; a message
    /// of a table the placement does not hold (a stale table of an earlier run, the conntrack switch, anything
    /// another writer put in the namespace) or of a rule it does not know is left out: it is not the caller's.
    /// <paramref name="callerRuleHandle"/> maps (family, table, kernel rule handle) to the caller's handle
    /// (<see cref="KernelPlacement.CallerRuleHandle"/>), null for an unknown table or rule.
    /// </summary>
    public static List<byte[]> ForCaller(ReadOnlySpan<byte> datagram, Func<byte, string, ulong?, ulong?> callerRuleHandle)
    {
        var result = new List<byte[]>();
        var r = new NetlinkMessageReader(datagram);
        while (r.TryRead(out var m))
        {
            if (m.Header.Type != Nfnl.Type(Nfnl.SubsysNftables, (byte)NftMsgType.Trace)) continue;
            if (Translate(m, callerRuleHandle) is { } b) result.Add(b);
        }
        return result;
    }

    static byte[]? Translate(NetlinkMessage m, Func<byte, string, ulong?, ulong?> callerRuleHandle)
    {
        if (m.Body.Length < NfGenMsg.Size) return null;
        byte family = m.GenMsg.Family;
        string? table = null;
        int handleAt = -1;
        ulong? kernelHandle = null;
        var a = m.Attributes();
        while (a.TryRead(out var attr))
        {
            if (attr.Type == NFTA_TRACE_TABLE) table = attr.String();
            else if (attr.Type == NFTA_TRACE_RULE_HANDLE && attr.Length == 8)
            {
                kernelHandle = attr.U64Be();
                handleAt = attr.PayloadOffset;
            }
        }
        if (table == null) return null;
        // with no rule handle (a chain's packet or policy step) this asks only whether the table is the caller's
        if (callerRuleHandle(family, table, kernelHandle) is not { } caller) return null;
        var copy = m.Bytes.ToArray();
        if (handleAt >= 0) BinaryPrimitives.WriteUInt64BigEndian(copy.AsSpan(handleAt), caller);
        return copy;
    }
}
