using Nft.Bytecode;
using Nft.Netlink;

namespace Bpfilter.Fuzz;

/// <summary>
/// Netlink framing, then every nf_tables message through <see cref="NftMessage.Decode"/> and back.
/// Bad input may only be refused with <see cref="NetlinkException"/> (the daemon turns it into
/// NLMSG_ERROR); anything else escaping is a crash. A decoded record re-encodes, and the re-encoded
/// message decodes again to bytes that encode identically (encoding is a fixed point after one pass).
/// </summary>
public sealed class DecoderTarget : IFuzzTarget
{
    const int MaxAttributeType = 64; // above every NFTA_* enum: the walk itself is under test

    public string Name => "decoder";

    public void Run(ReadOnlySpan<byte> input)
    {
        var reader = new NetlinkMessageReader(input);
        while (reader.TryRead(out var msg))
        {
            if (!msg.IsNfTables || NftMessage.RecordType((NftMsgType)Nfnl.Msg(msg.Header.Type)) is null)
            {
                // Framing only: the attribute walk must refuse, not crash.
                try { if (msg.Body.Length >= NfGenMsg.Size) _ = msg.AttributeTable(MaxAttributeType); }
                catch (NetlinkException) { }
                continue;
            }
            object record;
            try { record = NftMessage.Decode(msg); }
            catch (NetlinkException) { continue; }
            byte[] once = Encode(msg, record);
            var again = Decode(once, "re-encoded message");
            byte[] twice = Encode(again.Header, again.GenMsg, again.Record);
            if (!once.AsSpan().SequenceEqual(twice))
                throw new FuzzFinding($"re-encoding is not stable:\n  1: {Convert.ToHexString(once)}\n  2: {Convert.ToHexString(twice)}");
        }
    }

    static byte[] Encode(NetlinkMessage msg, object record) => Encode(msg.Header, msg.GenMsg, record);

    static byte[] Encode(NlMsgHeader h, NfGenMsg g, object record)
    {
        var w = new NetlinkWriter();
        var t = w.BeginNfMessage(Nfnl.SubsysNftables, Nfnl.Msg(h.Type), h.Flags, h.Seq, h.Pid, g.Family, g.ResId, g.Version);
        NftMessage.EncodeAttributes(w, record);
        w.EndMessage(t);
        return w.ToArray();
    }

    /// <summary>Decodes bytes the encoder wrote; a refusal here means the encoder wrote something malformed.</summary>
    internal static (NlMsgHeader Header, NfGenMsg GenMsg, object Record) Decode(byte[] bytes, string what)
    {
        var r = new NetlinkMessageReader(bytes);
        if (!r.TryRead(out var m) || r.Remaining != 0)
            throw new FuzzFinding($"{what} is not one well-formed netlink message: {Convert.ToHexString(bytes)}");
        try { return (m.Header, m.GenMsg, NftMessage.Decode(m)); }
        catch (NetlinkException e)
        {
            throw new FuzzFinding($"{what} does not decode (errno {e.Errno}, {e.ExtAck}): {Convert.ToHexString(bytes)}", e);
        }
    }
}
