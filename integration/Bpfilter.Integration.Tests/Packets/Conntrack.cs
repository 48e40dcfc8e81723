using System.Buffers.Binary;
using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// Empties fw's connection tracking table before each case, so a flow a previous case (or the
/// previous run of the same case) left behind cannot make a packet `established` or change a NAT
/// mapping. ctnetlink's IPCTNL_MSG_CT_DELETE without a tuple flushes every entry of the namespace.
/// </summary>
public static class Conntrack
{
    const ushort NfnlSubsysCtnetlink = 1, IpctnlMsgCtDelete = 2, NlmFRequest = 1, NlmFAck = 4, NlmsgError = 2;

    public static void Flush(NetNs ns)
    {
        var msg = new byte[20];
        BinaryPrimitives.WriteUInt32LittleEndian(msg, (uint)msg.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(4), (ushort)(NfnlSubsysCtnetlink << 8 | IpctnlMsgCtDelete));
        BinaryPrimitives.WriteUInt16LittleEndian(msg.AsSpan(6), (ushort)(NlmFRequest | NlmFAck));
        BinaryPrimitives.WriteUInt32LittleEndian(msg.AsSpan(8), 1);
        msg[16] = 0; // nfgen_family AF_UNSPEC: every family
        using var nl = new KernelNetlinkSocket(ns);
        var replies = nl.Exchange(msg);
        var ack = replies.FirstOrDefault(r => r.Length >= 20 && BinaryPrimitives.ReadUInt16LittleEndian(r.AsSpan(4)) == NlmsgError)
            ?? throw new IOException($"conntrack flush in {ns.Name}: no answer from ctnetlink");
        var error = BinaryPrimitives.ReadInt32LittleEndian(ack.AsSpan(16));
        if (error != 0) throw new IOException($"conntrack flush in {ns.Name}: errno {-error}");
    }
}
