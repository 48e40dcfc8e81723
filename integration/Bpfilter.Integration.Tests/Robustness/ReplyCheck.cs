using System.Buffers.Binary;
using Nft.Netlink;

namespace Bpfilter.Integration.Tests.Robustness;

/// <summary>What a list of reply datagrams holds: NLMSG_ERROR errnos (0 = ACK) and NLMSG_DONE count.</summary>
sealed record ReplySummary(List<int> Errnos, int Done, int Other)
{
    public bool HasErrorMessage => Errnos.Count > 0;
    public bool HasFailure => Errnos.Any(e => e != 0);
    public override string ToString() =>
        $"errors [{string.Join(',', Errnos)}], {Done} done, {Other} other";
}

static class ReplyCheck
{
    /// <summary>
    /// Parses datagrams as the kernel would have queued them: whole netlink messages, each length at
    /// least a header and within its datagram, NLMSG_ERROR carrying a struct nlmsgerr and a valid
    /// extack TLV area. Returns null and a reason when something does not parse.
    /// </summary>
    public static ReplySummary? Parse(IReadOnlyList<byte[]> datagrams, out string problem)
    {
        var errnos = new List<int>();
        int done = 0, other = 0;
        problem = "";
        foreach (var d in datagrams)
        {
            int off = 0;
            if (d.Length == 0) { problem = "empty datagram"; return null; }
            while (off < d.Length)
            {
                if (d.Length - off < NlMsgHeader.Size) { problem = $"{d.Length - off} stray bytes after the last message"; return null; }
                var h = NlMsgHeader.Read(d.AsSpan(off));
                if (h.Length < NlMsgHeader.Size || h.Length > d.Length - off)
                {
                    problem = $"message at {off} claims {h.Length} bytes in a datagram of {d.Length}";
                    return null;
                }
                var body = d.AsSpan(off + NlMsgHeader.Size, (int)h.Length - NlMsgHeader.Size);
                switch (h.Type)
                {
                    case NlMsgType.Error:
                        if (body.Length < 4 + NlMsgHeader.Size) { problem = $"NLMSG_ERROR of {h.Length} bytes has no nlmsgerr"; return null; }
                        int err = BinaryPrimitives.ReadInt32LittleEndian(body);
                        // Other nfnetlink subsystems use private codes above 4095 (ipset: 4097), so only the sign is checked.
                        if (err > 0) { problem = $"NLMSG_ERROR with positive error {err}"; return null; }
                        errnos.Add(-err);
                        if (!CheckExtack(h, body, out problem)) return null;
                        break;
                    case NlMsgType.Done:
                        done++;
                        break;
                    default:
                        other++;
                        break;
                }
                off += NetlinkLimits.Align((int)h.Length);
            }
        }
        return new ReplySummary(errnos, done, other);
    }

    /// <summary>With NLM_F_ACK_TLVS the TLVs follow the echoed request (capped: its header only).</summary>
    static bool CheckExtack(NlMsgHeader h, ReadOnlySpan<byte> body, out string problem)
    {
        problem = "";
        if (!h.Has(NlmFlags.AckTlvs)) return true;
        var inner = NlMsgHeader.Read(body[4..]);
        int echoed = h.Has(NlmFlags.Capped) ? NlMsgHeader.Size : (int)inner.Length;
        int tlvStart = 4 + NetlinkLimits.Align(echoed);
        if (tlvStart > body.Length) { problem = $"extack TLVs start at {tlvStart}, past the {body.Length}-byte error body"; return false; }
        int off = tlvStart;
        while (off + 4 <= body.Length)
        {
            int len = BinaryPrimitives.ReadUInt16LittleEndian(body[off..]);
            if (len < 4 || off + len > body.Length) { problem = $"extack TLV at {off} has length {len}"; return false; }
            off += NetlinkLimits.Align(len);
        }
        return true;
    }
}
