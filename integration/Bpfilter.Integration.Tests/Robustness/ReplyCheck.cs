using System.Buffers.Binary;
using Nft.Netlink;

namespace Bpfilter.Integration.Tests.Robustness;

/// <summary>What a list of reply datagrams holds: NLMSG_ERROR errnos (0 = ACK) and NLMSG_DONE count.</summary>
sealed record ReplySummary(List<int> Errnos, int Done, int Other, List<string> Extacks)
{
    public bool HasErrorMessage => Errnos.Count > 0;
    public bool HasFailure => Errnos.Any(e => e != 0);
    public override string ToString() =>
        $"errors [{string.Join(',', Errnos)}], {Done} done, {Other} other" +
        (Extacks.Count > 0 ? $", extack \"{string.Join("\", \"", Extacks)}\"" : "");
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
        var extacks = new List<string>();
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
                        if (!CheckExtack(h, body, extacks, out problem)) return null;
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
        return new ReplySummary(errnos, done, other, extacks);
    }

    /// <summary>
    /// With NLM_F_ACK_TLVS the TLVs follow the echoed request (capped: its header only). Readers find
    /// them as libmnl does for nft: after struct nlmsgerr plus the echoed header's own nlmsg_len, so
    /// an echoed header whose length disagrees with the bytes echoed makes the reply unreadable.
    /// </summary>
    static bool CheckExtack(NlMsgHeader h, ReadOnlySpan<byte> body, List<string> extacks, out string problem)
    {
        problem = "";
        if (!h.Has(NlmFlags.AckTlvs)) return true;
        var inner = NlMsgHeader.Read(body[4..]);
        long echoed = h.Has(NlmFlags.Capped) ? NlMsgHeader.Size : Math.Max(inner.Length, (uint)NlMsgHeader.Size);
        long tlvStart = 4 + ((echoed + 3) & ~3L);
        if (tlvStart > body.Length)
        {
            problem = $"the echoed request header says {inner.Length} bytes, so extack TLVs would start at {tlvStart}, past the {body.Length}-byte error body";
            return false;
        }
        int off = (int)tlvStart;
        while (off + 4 <= body.Length)
        {
            int len = BinaryPrimitives.ReadUInt16LittleEndian(body[off..]);
            if (len < 4 || off + len > body.Length) { problem = $"extack TLV at {off} has length {len}"; return false; }
            int type = BinaryPrimitives.ReadUInt16LittleEndian(body[(off + 2)..]) & NlaFlags.TypeMask;
            if (type == NlmsgErrAttr.Msg)
                extacks.Add(System.Text.Encoding.UTF8.GetString(body.Slice(off + 4, len - 4)).TrimEnd('\0'));
            off += NetlinkLimits.Align(len);
        }
        return true;
    }
}
